"""load: candles for every configured pair, from the configured source."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, step

from cryptocast.config import Settings
from cryptocast.contracts import PairSpan, SourceInfo
from cryptocast.data.sources import load_ohlcv
from cryptocast.delivery.provenance import run_provenance
from infra.materializers import HashedFrameMaterializer
from infra.stack import TRACKER
from infra.tracking import flatten, run_metadata, tag_run


@step(experiment_tracker=TRACKER, output_materializers={"ohlcv": HashedFrameMaterializer})
def load(cfg: Settings) -> tuple[Annotated[pd.DataFrame, "ohlcv"], Annotated[dict, "source"]]:
    loaded = load_ohlcv(cfg)
    frame = loaded.frame
    span = frame.groupby("pair")["timestamp"].agg(["min", "max", "count"])
    source = SourceInfo(
        requested=loaded.requested,
        used=loaded.source,
        fallback=loaded.fallback,
        live=loaded.live,
        details=loaded.details,
        pairs={
            p: PairSpan(first=str(r["min"]), last=str(r["max"]), rows=int(r["count"]))
            for p, r in span.iterrows()
        },
    )
    prov = run_provenance(frame)
    mlflow.log_params(flatten(cfg.model_dump(mode="json"), "cfg."))
    mlflow.log_dict(cfg.model_dump(mode="json"), "config.json")
    mlflow.log_dict(source.to_dict(), "data/source.json")
    tag_run(
        {
            "granularity": cfg.granularity,
            "model": cfg.deploy.model_name,
            "data_source": loaded.source,
            "data_fallback": str(loaded.fallback).lower(),
        }
    )
    context = get_step_context()
    mlflow.set_tags(
        prov | {"zenml_run_id": str(context.pipeline_run.id), "pipeline": context.pipeline.name}
    )
    run_metadata({"data": source.to_dict(), "provenance": prov})
    for pair, info in source.pairs.items():
        print(
            f"load: {pair} {info.rows} candles {info.first} -> {info.last} (source {loaded.source})"
        )
    return frame, source.to_dict()
