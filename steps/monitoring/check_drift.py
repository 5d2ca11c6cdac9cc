"""check_drift: KS and PSI of recent candles' features against the reference window."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import pair_slug
from cryptocast.observability import monitoring
from infra.stack import TRACKER


@step(experiment_tracker=TRACKER)
def check_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, cfg: Settings
) -> Annotated[pd.DataFrame, "drift"]:
    """Per pair and feature, the PSI and KS test of the recent candles against the
    champion's reference window, and whether it drifted."""
    result = monitoring.drift(reference, recent, **cfg.monitoring.drift_limits())
    for r in result.itertuples():
        key = f"{pair_slug(r.pair)}.{r.feature}"
        mlflow.log_metrics({f"psi.{key}": r.psi, f"ks.{key}": r.ks})
    mlflow.log_metric("drift_share", float(result["drifted"].mean()) if len(result) else 0.0)
    print(
        result.to_string(index=False)
        if len(result)
        else "monitor: no recent candles to check for drift"
    )
    return result
