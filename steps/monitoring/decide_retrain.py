"""decide_retrain: retrain when live accuracy or drift crosses its threshold."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import MonitorDecision
from cryptocast.observability import monitoring
from infra.stack import TRACKER
from infra.tracking import run_metadata, tag_run


@step(experiment_tracker=TRACKER)
def decide_retrain(
    live_accuracy: pd.DataFrame, drift: pd.DataFrame, cfg: Settings
) -> Annotated[MonitorDecision, "monitor_decision"]:
    """Retrain when a pair's live MASE or the share of drifted features crosses its
    threshold; the reasons in words, tagged on the run."""
    decision = monitoring.retrain_decision(live_accuracy, drift, **cfg.monitoring.decision_limits())
    mlflow.log_dict(decision.to_dict(), "monitor_decision.json")
    tag_run({"monitor_decision": decision.action, "monitor_reasons": "; ".join(decision.reasons)})
    run_metadata({"monitor_decision": decision.to_dict()})
    print(f"monitor decision: {decision.action.upper()}\n  - " + "\n  - ".join(decision.reasons))
    return decision
