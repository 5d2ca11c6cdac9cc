"""The monitoring pipeline (same config files as training):

    load -> split -> score_live -> check_drift -> decide_retrain -> trigger_training

Run with ``make monitor GRAN=hour``.
"""

from __future__ import annotations

from zenml import pipeline

from cryptocast.config import apply_overrides
from steps import load
from steps.monitor import check_drift, decide_retrain, score_live, split, trigger_training


@pipeline(name="cryptocast_monitoring", enable_cache=False)
def monitoring(
    config: dict,
    source: str | None = None,
    data_dir: str | None = None,
    pairs: list[str] | None = None,
) -> None:
    cfg = apply_overrides(config, source=source, data_dir=data_dir, pairs=pairs)
    ohlcv, _ = load(cfg=cfg)
    reference, recent, champion = split(ohlcv, cfg=cfg)
    accuracy = score_live(reference, recent, champion, cfg=cfg)
    drifted = check_drift(reference, recent, cfg=cfg)
    decision = decide_retrain(accuracy, drifted, cfg=cfg)
    trigger_training(
        decision, cfg=cfg, overrides={"data": source, "data_dir": data_dir, "pairs": pairs}
    )
