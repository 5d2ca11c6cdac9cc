"""Small helpers shared by the steps: tags and metadata on both the ZenML run and the
MLflow run (one MLflow run per pipeline run: ZenML's tracker reuses it across steps)."""

from __future__ import annotations

import json
from typing import Any

import mlflow
from zenml import add_tags, get_step_context, log_metadata


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


def experiment_name(granularity: str) -> str:
    """The MLflow experiment of a granularity's runs (``experiment_name`` in its config)."""
    return f"cryptocast-{granularity}"
