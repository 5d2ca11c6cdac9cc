"""evaluate: gather the fit steps' backtests, re-score the champion on the same window
(when the data provenance allows it), decide with significance tests, and log the
evidence."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import Calibrations, Decision, SourceInfo, pair_slug
from cryptocast.data.validation import ValidationReport
from cryptocast.delivery import registry
from cryptocast.delivery.decisions import decide, provenance_guard
from cryptocast.delivery.provenance import data_provenance
from cryptocast.modeling.backtest import Evaluation, limit_threads, merge_evaluations, rescore
from cryptocast.modeling.evaluation import METRICS
from cryptocast.modeling.plots import forecast_vs_actual
from cryptocast.modeling.reports import calibration_figure
from infra.stack import TRACKER
from infra.tracking import flatten, run_metadata, tag_run


def _log_metrics(scores: pd.DataFrame, decision: Decision) -> None:
    metrics = {}
    for row in scores.to_dict("records"):
        for m in METRICS:
            metrics[f"{m}.{pair_slug(row['pair'])}.{row['candidate']}"] = row[m]
    tests = {"naive": decision.pooled_naive_test, "champion": decision.pooled_champion_test}
    tests |= {f"naive.{pair_slug(p.pair)}": p.naive_test for p in decision.pairs}
    tests |= {f"champion.{pair_slug(p.pair)}": p.champion_test for p in decision.pairs}
    for name, test in tests.items():
        if test is not None:
            metrics |= {f"dm.{name}.stat": test.stat, f"dm.{name}.p_value": test.p_value}
    mlflow.log_metrics(metrics)


def _log_plots(ev: Evaluation, decision: Decision, cfg: Settings) -> None:
    baseline = cfg.evaluation.baseline
    with tempfile.TemporaryDirectory() as tmp:
        for p in decision.pairs:
            shown = list(dict.fromkeys([p.challenger, baseline]))
            path = Path(tmp) / f"forecast_vs_actual_{pair_slug(p.pair)}.png"
            forecast_vs_actual(
                ev.backtests,
                p.pair,
                shown,
                path,
                title=f"{p.pair} ({cfg.granularity}): {' vs '.join(shown)}, "
                f"last {cfg.evaluation.window} candles",
            )
            mlflow.log_artifact(str(path), "plots")
            path = calibration_figure(ev, p.pair, cfg, Path(tmp))
            mlflow.log_artifact(str(path), "plots")


@step(experiment_tracker=TRACKER)
def evaluate(
    clean: pd.DataFrame,
    backtests: list[Evaluation],
    validation_report: ValidationReport,
    source: SourceInfo,
    cfg: Settings,
) -> tuple[
    Annotated[pd.DataFrame, "scores"],
    Annotated[Decision, "decision"],
    Annotated[Calibrations, "calibration"],
]:
    """The fit steps' backtests as one table, the champion re-scored on the same window
    where the data provenance allows, and the decision with its tests and reasons; logs
    the whole configuration, the metrics and the plots to the run."""
    mlflow.log_params(flatten(cfg.model_dump(mode="json"), "cfg."))
    mlflow.log_dict(cfg.model_dump(mode="json"), "config.json")
    ev = merge_evaluations(backtests, cfg)
    name = cfg.deploy.model_name
    run = data_provenance(source, cfg)
    champion_version = registry.alias_version(name)
    guard, champion = None, None
    if champion_version is not None:
        guard = provenance_guard(
            run,
            registry.version_provenance(name, champion_version),
            champion_version,
            promote_backfill=cfg.gates.promote_backfill,
        )
        if guard.rescore:
            limit_threads(cfg)
            bundle = registry.load_version_bundle(name, champion_version)
            champion = rescore(clean, bundle.forecasters, cfg, "champion")
            print(
                f"evaluate: champion v{champion_version} re-scored on this window"
                if champion is not None
                else f"evaluate: champion v{champion_version} serves none of {cfg.pairs}: "
                "nothing to re-score"
            )
    decision = decide(ev, cfg, champion=champion, champion_version=champion_version, guard=guard)
    _log_metrics(ev.scores, decision)
    _log_plots(ev, decision, cfg)
    mlflow.log_dict(validation_report.to_dict(), "validation/report.json")
    mlflow.log_dict(decision.model_dump(mode="json"), "decision.json")
    mlflow.log_text(ev.scores.to_string(index=False), "scores.txt")
    mlflow.log_metric("challenger_mean_mase", decision.challenger_mean_mase)
    tag_run({"decision": decision.action, "data_kind": run.kind})
    run_metadata({"decision": decision.model_dump(mode="json")})
    print(ev.scores.to_string(index=False))
    print(decision.summary())
    served = {p.pair: ev.served[p.pair][p.challenger] for p in decision.pairs}
    return ev.scores, decision, Calibrations(served)
