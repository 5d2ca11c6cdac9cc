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

import logging

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
