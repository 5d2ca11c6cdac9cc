"""The monitoring pipeline (the same granularity configs as training):

    load -> split -> score_live -> check_drift -> decide_retrain -> trigger_training

Run with ``make monitor GRAN=hour``; its ZenML run options (never cached) are in
``configs/pipelines/monitoring.yaml``.
"""

from __future__ import annotations

from pathlib import Path

from zenml import pipeline
from zenml.models import PipelineRunResponse

from cryptocast.config import apply_overrides, load_run_config
from cryptocast.paths import pipeline_config
from infra.tracking import MONITORING_PIPELINE, tracker_settings
from steps.data import load
from steps.monitoring import check_drift, decide_retrain, score_live, split, trigger_training


@pipeline(name=MONITORING_PIPELINE)
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


def run_monitoring(config_path: Path, **overrides) -> PipelineRunResponse | None:
    """Run the pipeline on the granularity config at ``config_path`` with ``overrides``."""
    raw = load_run_config(config_path)["parameters"]["config"]
    cfg = apply_overrides(raw, **overrides)
    return monitoring.with_options(
        config_path=str(pipeline_config(MONITORING_PIPELINE)), settings=tracker_settings(cfg)
    )(config=raw, **overrides)
