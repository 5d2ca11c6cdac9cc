"""The training pipeline, one definition for both granularities.

    load -> validate -> fit (one step per shard of pairs, and one for the multi-series
    candidates) -> evaluate -> deploy

Run with ``make train GRAN=hour`` (``configs/hour.yaml``) or ``GRAN=day``. The command
line reads and validates the configuration once (:func:`cryptocast.runconfig.load_run`); the
pipeline receives the validated settings and hands each cached step only its section.
"""

from __future__ import annotations

import contextlib

from zenml import pipeline
from zenml.config import CachePolicy
from zenml.enums import ExecutionMode
from zenml.models import PipelineRunResponse

from cryptocast.config import FitSection, LoadSection, Settings, ValidateSection
from cryptocast.modeling.backtest import shards
from cryptocast.runconfig import RunConfig
from infra import k8s
from infra.stack import orchestrator_flavor
from infra.tracking import TRAINING_PIPELINE, run_options
from steps.data import load, validate
from steps.delivery import deploy
from steps.evaluation import evaluate
from steps.training import fit

# ZenML keys a step's cache on the step's own source; the logic lives in the package,
# so its fingerprint is part of every cache key too.
CACHE_POLICY = CachePolicy(cache_func="cryptocast.delivery.provenance.code_fingerprint")


# A failed step ends the run at once with its own exception (a user error stays one, for
# the command line to report as such), instead of a "Skipping step" line per later step.
@pipeline(name=TRAINING_PIPELINE, cache_policy=CACHE_POLICY, execution_mode=ExecutionMode.FAIL_FAST)
def training(cfg: Settings) -> None:
    """``cfg``: the validated ``parameters.config`` of ``configs/<gran>.yaml`` with the
    command line's overrides applied."""
    ohlcv, source = load(cfg=cfg.section(LoadSection))
    clean, report = validate(ohlcv, source, cfg=cfg.section(ValidateSection))
    # fan-out over shards known from the config (a static DAG: each shard is cached on
    # its own and is its own pod on Kubernetes), then fan-in: lists of their outputs
    fitted, backtests = [], []
    fit_cfg = cfg.section(FitSection)
    for shard in shards(cfg):
        candidates, backtest = fit(clean, cfg=fit_cfg, pairs=shard.pairs, scope=shard.scope,
                                   id=shard.step_id)  # fmt: skip
        fitted.append(candidates)
        backtests.append(backtest)
    scores, decision, calibration = evaluate(clean, backtests, report, source, cfg=cfg)
    deploy(clean, fitted, scores, decision, calibration, source, cfg=cfg)


def run_training(run: RunConfig) -> PipelineRunResponse | None:
    """Run the pipeline for ``run`` (read and validated once by the caller) with its ZenML
    options; on a Kubernetes orchestrator, with the pods' settings of
    ``configs/stacks/kubernetes-run.yaml`` merged in (each fit step's pod gets
    ``scale.threads`` CPUs, at least 1)."""
    cfg = run.settings
    tracking = run_options(cfg, TRAINING_PIPELINE)
    with contextlib.ExitStack() as stack:
        if orchestrator_flavor() == "kubernetes":
            steps = [s.step_id for s in shards(cfg)]
            path = stack.enter_context(
                k8s.run_config_file(run.options, steps, max(1, cfg.scale.threads))
            )
            options = {"config_path": str(path), **tracking}
        else:
            options = run.options | tracking
        return training.with_options(**options)(cfg=cfg)
