"""train: every candidate of the registry, per pair, fitted before the evaluation window."""

from __future__ import annotations

import time
from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.workflow import Candidates, train_candidates
from infra.materializers import CandidatesMaterializer
from infra.stack import TRACKER


@step(experiment_tracker=TRACKER, output_materializers={"candidates": CandidatesMaterializer})
def train(clean: pd.DataFrame, cfg: Settings) -> Annotated[Candidates, "candidates"]:
    t0 = time.perf_counter()
    candidates = train_candidates(clean, cfg)
    mlflow.log_metric("train_seconds", time.perf_counter() - t0)
    return candidates
