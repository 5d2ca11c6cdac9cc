"""score_live: the champion's stored forecasts against the candles that happened."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import ChampionWindow, pair_slug
from cryptocast.delivery import store
from cryptocast.modeling import plots
from cryptocast.observability import monitoring
from infra.stack import TRACKER


@step(experiment_tracker=TRACKER)
def score_live(
    reference: pd.DataFrame, recent: pd.DataFrame, champion: ChampionWindow, cfg: Settings
) -> Annotated[pd.DataFrame, "live_accuracy"]:
    """The champion's stored forecasts scored against the candles that came due (live
    MASE, MAE, interval coverage per pair), logged with a plot per pair."""
    engine = store.connect()
    try:
        rows = store.read_forecasts(engine, cfg.granularity, cfg.deploy.model_name)
    finally:
        engine.dispose()
    rows = rows[rows["model_version"] == champion.version]
    scored = monitoring.scored_forecasts(rows, recent, cfg.monitoring.live_window)
    accuracy = monitoring.live_accuracy(scored, reference)
    with tempfile.TemporaryDirectory() as tmp:
        for pair in accuracy["pair"]:
            path = Path(tmp) / f"live_forecasts_{pair_slug(pair)}.png"
            plots.live_forecasts(
                scored,
                pair,
                path,
                title=f"{pair} ({cfg.granularity}): live forecasts of v{champion.version}",
            )
            mlflow.log_artifact(str(path), "plots")
    for r in accuracy.itertuples():
        figures = {"live_mase": r.mase, "live_mae": r.mae, "live_coverage": r.coverage}
        mlflow.log_metrics(
            {monitoring.live_metric_name(k, r.pair): v for k, v in figures.items()}
            | {monitoring.live_metric_name("live_scored", r.pair): r.n}
        )
    print(accuracy.to_string(index=False) if len(accuracy) else "monitor: nothing to score yet")
    return accuracy
