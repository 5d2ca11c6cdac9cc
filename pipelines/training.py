"""The training pipeline, one definition for both granularities.

    load -> validate -> fit (one step per shard of pairs, and one for the multi-series
    candidates) -> evaluate -> deploy

Run with ``make train GRAN=hour`` (``configs/hour.yaml``) or ``GRAN=day``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from zenml import pipeline
from zenml.config import CachePolicy
from zenml.enums import ExecutionMode
from zenml.models import PipelineRunResponse

from cryptocast.config import apply_overrides, load_run_config
from cryptocast.modeling.backtest import shards
from infra import k8s
from infra.stack import orchestrator_flavor
from infra.tracking import TRAINING_PIPELINE, tracker_settings
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
def training(
    config: dict,
    source: str | None = None,
    data_dir: str | None = None,
    pairs: list[str] | None = None,
    until: str | None = None,
    promote_backfill: bool = False,
    require_learned: bool = False,
) -> None:
    """``config`` comes from ``configs/<gran>.yaml``; the others are command-line overrides."""
    cfg = apply_overrides(
        config,
        source=source,
        data_dir=data_dir,
        pairs=pairs,
        until=until,
        promote_backfill=promote_backfill,
        require_learned=require_learned,
    )
    ohlcv, source_info = load(cfg=cfg)
    clean, report = validate(ohlcv, source_info, cfg=cfg)
    # fan-out over shards known from the config (a static DAG: each shard is cached on
    # its own and is its own pod on Kubernetes), then fan-in: lists of their outputs
    fitted, backtests = [], []
    for shard in shards(cfg):
        candidates, backtest = fit(clean, cfg=cfg, pairs=shard.pairs, scope=shard.scope,
                                   id=shard.step_id)  # fmt: skip
        fitted.append(candidates)
        backtests.append(backtest)
    scores, decision, calibration = evaluate(clean, backtests, report, source_info, cfg=cfg)
    deploy(clean, fitted, scores, decision, calibration, source_info, cfg=cfg)


def run_training(config_path: Path, **overrides) -> PipelineRunResponse | None:
    """Run the pipeline with the run configuration at ``config_path`` (its
    ``parameters.config`` and cache settings) and the command-line ``overrides``; on a
    Kubernetes orchestrator, with the pods' settings of ``configs/stacks/kubernetes-run.yaml``
    merged in (each fit step's pod gets ``scale.threads`` CPUs, at least 1)."""
    run = load_run_config(config_path)
    cfg = apply_overrides(run["parameters"]["config"], **overrides)
    with contextlib.ExitStack() as stack:
        if orchestrator_flavor() == "kubernetes":
            steps = [s.step_id for s in shards(cfg)]
            config_path = stack.enter_context(
                k8s.run_config_file(run, steps, max(1, cfg.scale.threads))
            )
        options = {"config_path": str(config_path), "settings": tracker_settings(cfg)}
        return training.with_options(**options)(**overrides)
