"""MLflow runs and ZenML run metadata: tags and metadata on both the ZenML pipeline run and
its MLflow run (one MLflow run per pipeline run: ZenML's tracker reuses it across steps),
the pipelines' names, and the MLflow runs of people's promotions and rollbacks."""

from __future__ import annotations

import getpass
import json
from typing import Any

import mlflow
from zenml import add_tags, get_step_context, log_metadata

from cryptocast.config import Settings
from cryptocast.contracts import ReconcileRecord, ReleaseRecord

# The pipelines' names: ZenML's, and the ``pipeline`` tag of their MLflow runs (the
# exporter finds the last training and monitoring runs by it).
TRAINING_PIPELINE = "cryptocast_training"
MONITORING_PIPELINE = "cryptocast_monitoring"


def run_tags(cfg: Settings, pipeline: str) -> dict[str, str]:
    """What identifies a run of ``pipeline`` for ``cfg`` (its granularity and model), on
    its MLflow run and its ZenML run from the start (so a run killed early is found)."""
    return {"granularity": cfg.granularity, "model": cfg.deploy.model_name, "pipeline": pipeline}


def run_options(cfg: Settings, pipeline: str) -> dict[str, Any]:
    """ZenML run options of a ``pipeline`` run for ``cfg``: its MLflow experiment, and the
    run's tags on both sides."""
    tags = run_tags(cfg, pipeline)
    return {
        "settings": {
            "experiment_tracker.mlflow": {"experiment_name": cfg.experiment_name, "tags": tags}
        },
        "tags": [f"{k}={v}" for k, v in tags.items()],
    }


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, f"{name}.")
        else:
            out[name] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return out


def tag_run(tags: dict[str, str]) -> None:
    """Tag the MLflow run and the ZenML pipeline run (``key=value`` tags)."""
    mlflow.set_tags(tags)
    run_id = get_step_context().pipeline_run.id
    add_tags(tags=[f"{k}={v}" for k, v in tags.items()], run=run_id)


def run_metadata(metadata: dict[str, Any]) -> None:
    """Metadata on the ZenML pipeline run (shown in the dashboard)."""
    log_metadata(metadata=metadata, run_id_name_or_prefix=get_step_context().pipeline_run.id)


def record_event(
    cfg: Settings, event: str, result: ReleaseRecord | ReconcileRecord, reason: str
) -> None:
    """A person's promotion or rollback, as its own MLflow run in the granularity's
    experiment (tags ``event``, ``from_version``, ``to_version``, ``user``)."""
    if not isinstance(result, ReleaseRecord):
        return  # the champion was already that version: nothing changed hands
    mlflow.set_experiment(cfg.experiment_name)
    with mlflow.start_run(run_name=f"{event}-v{result.version}"):
        mlflow.set_tags(
            {
                "event": event,
                "from_version": str(result.previous),
                "to_version": str(result.version),
                "user": getpass.getuser(),
                "reason": reason[:500],
                "granularity": cfg.granularity,
                "decision": event,
            }
        )
        mlflow.log_dict(result.to_dict() | {"reason": reason}, f"{event}.json")
