"""The monitoring pipeline (the same granularity configs as training):

    load -> split -> score_live -> check_drift -> decide_retrain -> trigger_training

Run with ``make monitor GRAN=hour``; its ZenML run options (never cached) are in
``configs/pipelines/monitoring.yaml``.
"""

from __future__ import annotations

from zenml import pipeline
from zenml.enums import ExecutionMode
from zenml.models import PipelineRunResponse

from cryptocast.config import LoadSection, Settings
from cryptocast.paths import pipeline_config
from cryptocast.runconfig import Overrides, RunConfig
from infra.tracking import MONITORING_PIPELINE, run_options
from steps.data import load
from steps.monitoring import check_drift, decide_retrain, score_live, split, trigger_training


# as the training pipeline: a failed step ends the run with its own exception (a user's
# error stays one: one `error:` line, exit 2), not a generic "run failed"
@pipeline(name=MONITORING_PIPELINE, execution_mode=ExecutionMode.FAIL_FAST)
def monitoring(cfg: Settings, overrides: Overrides) -> None:
    """``cfg``: the granularity's validated settings; ``overrides``: the command line's,
    which a training run it triggers inherits."""
    ohlcv, source = load(cfg=cfg.section(LoadSection))
    reference, recent, champion = split(ohlcv, source, cfg=cfg)
    accuracy = score_live(reference, recent, champion, cfg=cfg)
    drifted = check_drift(reference, recent, cfg=cfg)
    decision = decide_retrain(accuracy, drifted, cfg=cfg)
    trigger_training(decision, cfg=cfg, overrides=overrides.data_only())


def run_monitoring(run: RunConfig) -> PipelineRunResponse | None:
    """Run the pipeline for the granularity configuration ``run`` (read and validated once
    by the caller), with the monitoring pipeline's own ZenML options."""
    options = run_options(run.settings, MONITORING_PIPELINE)
    return monitoring.with_options(
        config_path=str(pipeline_config(MONITORING_PIPELINE)), **options
    )(cfg=run.settings, overrides=run.overrides)
