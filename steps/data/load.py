"""load: candles for every configured pair, from the configured source."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, step

from cryptocast.config import LoadSection
from cryptocast.contracts import SourceInfo
from cryptocast.data.sources import load_ohlcv
from cryptocast.delivery.provenance import run_provenance
from infra.materializers import HashedFrameMaterializer
from infra.stack import TRACKER
from infra.tracking import run_metadata, tag_run


@step(experiment_tracker=TRACKER, output_materializers={"ohlcv": HashedFrameMaterializer})
def load(
    cfg: LoadSection,
) -> tuple[Annotated[pd.DataFrame, "ohlcv"], Annotated[SourceInfo, "source"]]:
    """The candles of ``cfg.pairs`` from ``cfg.data.source``, and where they came from
    (tagged on the MLflow and ZenML runs: a fallback to sample data is never silent)."""
    frame, source = load_ohlcv(cfg)
    prov = run_provenance(frame)
    mlflow.log_dict(source.to_dict(), "data/source.json")
    tag_run({"data_source": source.used, "data_fallback": str(source.fallback).lower()})
    mlflow.set_tags(prov | {"zenml_run_id": str(get_step_context().pipeline_run.id)})
    run_metadata({"data": source.to_dict(), "provenance": prov})
    for pair, info in source.pairs.items():
        print(
            f"load: {pair} {info.rows} candles {info.first} -> {info.last} (source {source.used})"
        )
    return frame, source
