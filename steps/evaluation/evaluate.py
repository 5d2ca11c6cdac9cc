"""evaluate: backtest every candidate, re-score the champion on the same window, decide."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast import registry
from cryptocast.config import Settings
from cryptocast.contracts import Decision, pair_slug
from cryptocast.evaluation import METRICS, promotion_decision
from cryptocast.plots import forecast_vs_actual
from cryptocast.workflow import Candidates, evaluate_candidates, rescore
from infra.stack import TRACKER
from infra.tracking import run_metadata, tag_run


class QualityGateError(RuntimeError):
    """No pair's challenger passed the quality gate: the run fails."""


def _log_metrics(scores: pd.DataFrame) -> None:
    metrics = {}
    for row in scores.to_dict("records"):
        for m in METRICS:
            metrics[f"{m}.{pair_slug(row['pair'])}.{row['candidate']}"] = row[m]
    mlflow.log_metrics(metrics)


def _log_plots(backtests: pd.DataFrame, decision: Decision, cfg: Settings) -> None:
    baseline = cfg.evaluation.baseline
    with tempfile.TemporaryDirectory() as tmp:
        for p in decision.pairs:
            shown = list(dict.fromkeys([p.challenger, baseline]))
            path = Path(tmp) / f"forecast_vs_actual_{pair_slug(p.pair)}.png"
            forecast_vs_actual(
                backtests,
                p.pair,
                shown,
                path,
                title=f"{p.pair} ({cfg.granularity}): {' vs '.join(shown)}, "
                f"last {cfg.evaluation.window} candles",
            )
            mlflow.log_artifact(str(path), "plots")


@step(experiment_tracker=TRACKER)
def evaluate(
    clean: pd.DataFrame, candidates: Candidates, validation_report: dict, cfg: Settings
) -> tuple[Annotated[pd.DataFrame, "scores"], Annotated[dict, "decision"]]:
    scores, backtests = evaluate_candidates(clean, candidates, cfg)
    name = cfg.deploy.model_name
    champion_version = registry.alias_version(name)
    champion = None
    if champion_version is not None:
        bundle = registry.load_version_bundle(name, champion_version)
        champion = rescore(clean, bundle.forecasters, cfg)
        print(f"evaluate: champion v{champion_version} re-scored on this window")
    decision = promotion_decision(
        scores,
        baseline=cfg.evaluation.baseline,
        gates=cfg.gates,
        granularity=cfg.granularity,
        champion=champion,
        champion_version=champion_version,
    )
    _log_metrics(scores)
    _log_plots(backtests, decision, cfg)
    mlflow.log_dict(validation_report, "validation/report.json")
    mlflow.log_dict(decision.model_dump(mode="json"), "decision.json")
    mlflow.log_text(scores.to_string(index=False), "scores.txt")
    mlflow.log_metric("challenger_mean_mase", decision.challenger_mean_mase)
    tag_run({"decision": decision.action})
    run_metadata({"decision": decision.model_dump(mode="json")})
    print(scores.to_string(index=False))
    print(decision.summary())
    if not decision.any_pair_passed:
        raise QualityGateError(
            "no pair's model beats the naive forecast (gates.max_mase_ratio in "
            f"configs/{cfg.granularity}.yaml); nothing is deployed.\n{decision.summary()}"
        )
    return scores, decision.model_dump(mode="json")
