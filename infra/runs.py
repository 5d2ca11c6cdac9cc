"""Training runs whose process is gone.

A training run killed outright (SIGKILL, a lost machine) never tells ZenML or MLflow that
it ended: its ZenML run stays ``running`` and its MLflow run ``RUNNING``. Whoever holds
the granularity's lock knows that no training run of that granularity is alive, so any
still in progress is an orphan: :func:`fail_orphans` marks them failed (``make train``
does it before it starts, ``make status`` when the lock is free). A run stopped by a
signal that can be handled (SIGINT, SIGTERM, the death of ``make``) is marked failed on
its way out (:func:`stop_on_signals`, then :func:`fail_orphans`). A release killed
before its commit can leave a model server of a version that was never registered:
:func:`retire_orphan_servers` stops it at the same moments.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import signal
from typing import Any

from cryptocast.config import Settings
from infra.tracking import TRAINING_PIPELINE

PR_SET_PDEATHSIG = 1  # linux/prctl.h


_stopped_by: list[str] = []  # the signal that stopped this process, once one has


def stopped_by() -> str | None:
    """The name of the signal that stopped this process (None: none did). Libraries
    turn the interruption into other exceptions (Lightning exits with status 1)."""
    return _stopped_by[-1] if _stopped_by else None


def _interrupt(signum: int, frame: Any) -> None:
    _stopped_by.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(_stopped_by[-1])


def stop_on_signals() -> None:
    """SIGTERM stops this process as Ctrl+C does (so ``finally`` blocks and the run's
    bookkeeping run), and on Linux the death of the parent (``make`` killed) sends it."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: make's death is not sent
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _zenml_orphans(cfg: Settings) -> list[Any]:
    from zenml.client import Client

    runs = Client().list_pipeline_runs(
        pipeline_name=TRAINING_PIPELINE, in_progress=True, hydrate=True, size=100
    )
    tag = f"granularity={cfg.granularity}"
    return [r for r in runs.items if tag in {t.name for t in r.tags}]


def _mlflow_orphans(cfg: Settings) -> list[Any]:
    import mlflow

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(cfg.experiment_name)
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id],
        f"attributes.status = 'RUNNING' and tags.pipeline = '{TRAINING_PIPELINE}'",
    )


def fail_orphans(cfg: Settings, why: str) -> list[str]:
    """Mark every training run of ``cfg`` still in progress as failed, saying ``why``;
    call only while holding the granularity's lock. Returns what was marked."""
    import mlflow
    from zenml.client import Client
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunUpdate, StepRunUpdate

    from infra.stack import configure_mlflow

    configure_mlflow()  # a step's tracker may have pointed mlflow elsewhere on its way out
    store = Client().zen_store
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    marked = []
    for run in _zenml_orphans(cfg):
        for step in run.steps.values():
            if not step.status.is_finished:
                store.update_run_step(
                    step.id, StepRunUpdate(status=ExecutionStatus.FAILED, end_time=now)
                )
        store.update_run(
            run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED, status_reason=why)
        )
        marked.append(f"ZenML run {run.name}")
    client = mlflow.MlflowClient()
    for run in _mlflow_orphans(cfg):
        client.set_tag(run.info.run_id, "ended", why)
        client.set_terminated(run.info.run_id, status="FAILED")
        marked.append(f"MLflow run {run.info.run_name}")
    return marked


def retire_orphan_servers(cfg: Settings) -> list[str]:
    """Stop the model servers that a release killed before its commit left running (a
    version the registry does not know, serving a model nobody registered); call only
    while holding the granularity's lock. Returns them as ``<model> v<version>``."""
    from cryptocast.delivery import registry
    from infra import deployer

    name = cfg.deploy.model_name
    registered = {str(v) for v in registry.version_table(name).get("version", [])}
    return [f"{name} v{v}" for v in deployer.retire_unregistered(name, registered)]
