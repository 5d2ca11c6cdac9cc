"""trigger_training: on ``retrain``, a training run, whose own promotion rules decide."""

from __future__ import annotations

from typing import Annotated

import mlflow
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import MonitorDecision, TrainingTrigger
from cryptocast.runconfig import Overrides
from infra import retrain
from infra.stack import TRACKER


@step(experiment_tracker=TRACKER)
def trigger_training(
    monitor_decision: MonitorDecision, cfg: Settings, overrides: Overrides
) -> Annotated[TrainingTrigger, "trigger"]:
    """On ``retrain`` (and ``monitoring.retrain``), a training run in its own process with
    the monitoring run's data overrides; its own promotion rules decide what is served."""
    decision = monitor_decision
    if decision.action != "retrain" or not cfg.monitoring.retrain:
        return TrainingTrigger(triggered=False)
    args = retrain.training_command(cfg.granularity, overrides)
    print(f"monitor: triggering cryptocast {' '.join(args)}", flush=True)
    rc = retrain.run_training(args)
    mlflow.set_tags({"retrain_triggered": "true", "retrain_returncode": str(rc)})
    if rc == retrain.REJECTED_EXIT:
        print(
            "monitor: the triggered training found nothing better than the random walk "
            "(REJECT); the champion and what users see stay as they are",
            flush=True,
        )
        return TrainingTrigger(triggered=True, returncode=rc, rejected=True, command=args)
    if rc != 0:
        raise RuntimeError(f"the triggered training run failed (exit {rc}); see its output above")
    return TrainingTrigger(triggered=True, returncode=rc, command=args)
