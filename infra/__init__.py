"""The adapter layer: ZenML and MLflow infrastructure around the pure core.

``stack`` (register/activate the ZenML stack), ``deployer`` (ZenML's MLflow model
deployer), ``tracking`` (MLflow runs and ZenML metadata), ``materializers``,
``release`` (the core release procedure bound to the registry and the deployer),
``exporter_state`` (what the Prometheus exporter reports), ``retrain`` (starting a
training run). Imports only point down, to ``cryptocast``.

The repository root is ZenML's source root. We do not run ``zenml init``: its ``.zen``
marker stores the *active stack* in the repository, shared by every ZenML home, so the
tests' isolated home would switch the developer's stack (seen with ZenML 0.98).
"""

import contextlib
import logging
import os
from collections.abc import Iterator

from zenml.utils.source_utils import set_custom_source_root

from cryptocast.paths import REPO_ROOT

set_custom_source_root(str(REPO_ROOT))


class _NoFastaiAutologWarning(logging.Filter):
    """ZenML's MLflow tracker tries to disable autologging for fastai after every step and
    warns that it cannot (fastai is not installed, so there is nothing to disable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to disable MLflow autologging" not in record.getMessage()


logging.getLogger(
    "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker"
).addFilter(_NoFastaiAutologWarning())


# A test run's coverage follows every subprocess (pyproject.toml: patch = subprocess);
# long-running servers are left out of it: tracing costs them ~40% more CPU to start and
# a traced request loop adds latency stalls, and their code is covered in process.
COVERAGE_ENV = ("COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG")


def server_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a long-running server started from this process."""
    return {k: v for k, v in os.environ.items() if k not in COVERAGE_ENV} | (extra or {})


@contextlib.contextmanager
def untraced_children() -> Iterator[None]:
    """Processes started meanwhile with this process's environment (ZenML's daemons
    inherit it) get :func:`server_environ`."""
    saved = {k: os.environ.pop(k) for k in COVERAGE_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)
