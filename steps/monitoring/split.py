"""split: the champion's training window (reference) and the candles since (recent)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import ChampionWindow, SourceInfo
from cryptocast.observability import monitoring
from cryptocast.serving.bundle import load_bundle
from infra.stack import TRACKER
from infra.tracking import tag_run


@step(experiment_tracker=TRACKER)
def split(
    ohlcv: pd.DataFrame, source: SourceInfo, cfg: Settings
) -> tuple[
    Annotated[pd.DataFrame, "reference"],
    Annotated[pd.DataFrame, "recent"],
    Annotated[ChampionWindow, "champion"],
]:
    """The champion's training window (reference) and the candles since (recent), per
    pair from the champion's forecast origin."""
    bundle = load_bundle(cfg.deploy.models_dir)
    monitoring.judgeable(bundle.manifest.provenance, bundle.manifest.model_version, source)
    origins = {p: bundle.histories[p].index[-1] for p in bundle.pairs if p in cfg.pairs}
    reference, recent = monitoring.split_at_origin(ohlcv, origins, cfg.monitoring.reference_window)
    champion = ChampionWindow(
        version=bundle.manifest.model_version,
        origins={p: str(t) for p, t in origins.items()},
        recent_candles={str(p): int(n) for p, n in recent.groupby("pair").size().items()},
    )
    print(
        f"monitor: champion v{champion.version}, origins {champion.origins}, "
        f"recent candles {champion.recent_candles}"
    )
    if recent.empty:  # say why: the data ends before the champion's last candle
        last = ohlcv.groupby("pair")["timestamp"].max()
        print(
            "monitor: no candle after the champion's origin: the data ends at "
            + ", ".join(f"{p} {last[p]:%Y-%m-%d %H:%M}" for p in origins if p in last.index)
            + " (monitoring scores what happened after the champion was trained)"
        )
    tag_run({"champion_version": champion.version})
    return reference, recent, champion
