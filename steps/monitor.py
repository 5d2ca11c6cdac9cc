"""The monitoring pipeline's steps: score the champion's stored forecasts against what
happened, check drift since its training window, decide, and trigger retraining."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast import monitoring, plots, store
from cryptocast.bundle import load_bundle
from cryptocast.config import Settings
from cryptocast.contracts import pair_slug
from steps.tracking import run_metadata, tag_run

ROOT = Path(__file__).resolve().parent.parent


def _thresholds(cfg: Settings) -> monitoring.MonitorThresholds:
    m = cfg.monitoring
    return monitoring.MonitorThresholds(
        max_live_mase=m.max_live_mase,
        min_scored=m.min_scored,
        drift=monitoring.DriftThresholds(
            psi=m.psi, ks_pvalue=m.ks_pvalue, share=m.drift_share, min_recent=m.min_recent
        ),
    )


@step(enable_cache=False)
def split(
    ohlcv: pd.DataFrame, cfg: Settings
) -> tuple[
    Annotated[pd.DataFrame, "reference"],
    Annotated[pd.DataFrame, "recent"],
    Annotated[dict, "champion"],
]:
    """Candles of the champion's training window (reference) and since (recent)."""
    bundle = load_bundle(Path(cfg.deploy.models_dir))
    origins = {p: bundle.histories[p].index[-1] for p in bundle.pairs if p in cfg.pairs}
    reference, recent = monitoring.split_at_origin(ohlcv, origins, cfg.monitoring.reference_window)
    champion = {
        "version": str(bundle.manifest["model_version"]),
        "origins": {p: str(t) for p, t in origins.items()},
        "recent_candles": recent.groupby("pair").size().to_dict(),
    }
    print(
        f"monitor: champion v{champion['version']}, origins {champion['origins']}, "
        f"recent candles {champion['recent_candles']}"
    )
    tag_run(
        {
            "granularity": cfg.granularity,
            "champion_version": champion["version"],
        }
    )
    return reference, recent, champion


@step(enable_cache=False)
def score_live(
    reference: pd.DataFrame, recent: pd.DataFrame, champion: dict, cfg: Settings
) -> Annotated[pd.DataFrame, "live_accuracy"]:
    engine = store.connect()
    try:
        rows = store.read_forecasts(engine, cfg.granularity, cfg.deploy.model_name)
    finally:
        engine.dispose()
    rows = rows[rows["model_version"] == champion["version"]]
    scored = monitoring.scored_forecasts(rows, recent, cfg.monitoring.live_window)
    accuracy = monitoring.live_accuracy(scored, reference)
    with tempfile.TemporaryDirectory() as tmp:
        for pair in accuracy["pair"]:
            path = Path(tmp) / f"live_forecasts_{pair_slug(pair)}.png"
            plots.live_forecasts(
                scored,
                pair,
                path,
                title=f"{pair} ({cfg.granularity}): live forecasts of v{champion['version']}",
            )
            mlflow.log_artifact(str(path), "plots")
    for r in accuracy.itertuples():
        mlflow.log_metrics(
            {
                f"live_mase.{pair_slug(r.pair)}": r.mase,
                f"live_mae.{pair_slug(r.pair)}": r.mae,
                f"live_coverage.{pair_slug(r.pair)}": r.coverage,
                f"live_scored.{pair_slug(r.pair)}": r.n,
            }
        )
    print(accuracy.to_string(index=False) if len(accuracy) else "monitor: nothing to score yet")
    return accuracy


@step(enable_cache=False)
def check_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, cfg: Settings
) -> Annotated[pd.DataFrame, "drift"]:
    result = monitoring.drift(reference, recent, _thresholds(cfg).drift)
    for r in result.itertuples():
        key = f"{pair_slug(r.pair)}.{r.feature}"
        mlflow.log_metrics({f"psi.{key}": r.psi, f"ks.{key}": r.ks})
    mlflow.log_metric("drift_share", float(result["drifted"].mean()) if len(result) else 0.0)
    print(result.to_string(index=False))
    return result


@step(enable_cache=False)
def decide_retrain(
    live_accuracy: pd.DataFrame, drift: pd.DataFrame, cfg: Settings
) -> Annotated[dict, "monitor_decision"]:
    decision = monitoring.decide(live_accuracy, drift, _thresholds(cfg))
    mlflow.log_dict(decision.to_dict(), "monitor_decision.json")
    tag_run({"monitor_decision": decision.action})
    run_metadata({"monitor_decision": decision.to_dict()})
    print(f"monitor decision: {decision.action.upper()}\n  - " + "\n  - ".join(decision.reasons))
    return decision.to_dict()


@step(enable_cache=False)
def trigger_training(
    monitor_decision: dict, cfg: Settings, overrides: dict
) -> Annotated[dict, "trigger"]:
    """On ``retrain``: the training pipeline, whose own promotion rules then decide."""
    if monitor_decision["action"] != "retrain" or not cfg.monitoring.retrain:
        return {"triggered": False}
    cmd = [sys.executable, str(ROOT / "run.py"), "train", "--gran", cfg.granularity]
    for flag, value in overrides.items():
        if value:
            cmd += [
                f"--{flag.replace('_', '-')}",
                " ".join(value) if isinstance(value, list) else str(value),
            ]
    print(f"monitor: triggering {' '.join(cmd[1:])}", flush=True)
    rc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy()).returncode
    mlflow.set_tags({"retrain_triggered": "true", "retrain_returncode": str(rc)})
    if rc != 0:
        raise RuntimeError(f"the triggered training run failed (exit {rc}); see its output above")
    return {"triggered": True, "returncode": rc, "command": cmd[1:]}
