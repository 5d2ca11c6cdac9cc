"""fit: one shard of the per-pair work (docs/performance.md: scale-out). Fits the shard's candidates
before the evaluation window and backtests them; the pipeline runs one fit step per
shard, so an orchestrator that runs steps in parallel spreads pairs over machines."""

from __future__ import annotations

import time
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, step

from cryptocast import threads
from cryptocast.config import FitSection
from cryptocast.modeling.backtest import Candidates, Evaluation, Shard, fit_and_backtest
from infra.materializers import CandidatesMaterializer, EvaluationMaterializer
from infra.stack import TRACKER


@step(
    experiment_tracker=TRACKER,
    output_materializers={
        "candidates": CandidatesMaterializer,
        "evaluation": EvaluationMaterializer,
    },
)
def fit(
    clean: pd.DataFrame, cfg: FitSection, pairs: list[str], scope: str
) -> tuple[Annotated[Candidates, "candidates"], Annotated[Evaluation, "evaluation"]]:
    """The shard's candidates fitted before the evaluation window, and their backtests;
    ``cfg`` is the fit section only, so a change elsewhere in the config keeps the cache."""
    name = get_step_context().step_run.name
    print(f"{name}: fitting and backtesting {scope}-series candidates of {len(pairs)} pair(s)")
    t0 = time.perf_counter()
    candidates, evaluation = fit_and_backtest(clean, cfg, Shard(pairs, scope))  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    mlflow.log_metric(f"{name}.seconds", seconds)
    print(
        f"{name}: {len(pairs)} pair(s), {scope}-series candidates, "
        f"{threads.current()} thread(s): fitted and backtested in {seconds:.1f}s"
    )
    return candidates, evaluation
