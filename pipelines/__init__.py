"""ZenML pipelines: composition only; the steps live in ``steps/``.

The repository root is ZenML's source root. We do not run ``zenml init``: its ``.zen``
marker stores the *active stack* in the repository, shared by every ZenML home, so the
tests' isolated home would switch the developer's stack (seen with ZenML 0.98).
"""

import logging
from pathlib import Path

from zenml.utils.source_utils import set_custom_source_root

ROOT = Path(__file__).resolve().parent.parent
set_custom_source_root(str(ROOT))


class _NoFastaiAutologWarning(logging.Filter):
    """ZenML's MLflow tracker tries to disable autologging for fastai after every step and
    warns that it cannot (fastai is not installed, so there is nothing to disable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to disable MLflow autologging" not in record.getMessage()


logging.getLogger(
    "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker"
).addFilter(_NoFastaiAutologWarning())
