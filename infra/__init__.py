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

import functools
import importlib.metadata
import logging
import os
import sys

from cryptocast.paths import REPO_ROOT

# ZenML's source root, without importing ZenML here (a second of imports that commands
# which never touch ZenML, such as `predict`, would pay): ZenML reads the variable when
# it loads; if it is loaded already, it is told directly
os.environ.setdefault("ZENML_CUSTOM_SOURCE_ROOT", str(REPO_ROOT))
if "zenml.utils.source_utils" in sys.modules:
    sys.modules["zenml.utils.source_utils"].set_custom_source_root(str(REPO_ROOT))

# ZenML resolves the distribution of every library class it records (step outputs'
# types, materializers) with importlib.metadata.packages_distributions(), which reads the
# metadata of every installed distribution again on each call: about 25 calls and 2-3 s
# of each training run. What is installed does not change while a command runs.
if not hasattr(importlib.metadata.packages_distributions, "cache_info"):
    importlib.metadata.packages_distributions = functools.cache(
        importlib.metadata.packages_distributions
    )


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
