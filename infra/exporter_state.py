"""What the Prometheus exporter reports about each granularity, gathered from the front
door (is it ready), MLflow (registry aliases, the last training and monitoring runs) and
the config (thresholds). An adapter: the metric families themselves are built by
``cryptocast.observability.telemetry.state_families``."""

from __future__ import annotations

import time
import urllib.request

import mlflow

from cryptocast.config import Settings
from cryptocast.delivery import registry
from cryptocast.observability.monitoring import live_from_metrics
from cryptocast.observability.telemetry import GranularityState
from infra import frontdoor
from infra.tracking import MONITORING_PIPELINE, TRAINING_PIPELINE


def probe(url: str, timeout_s: float = 2.0) -> float | None:
    """Seconds ``GET url`` took to answer 200; None if it failed."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            response.read()
    except OSError:
        return None
    return time.perf_counter() - start


def last_run(cfg: Settings, pipeline: str):
    """The newest MLflow run of ``pipeline`` for this config's registered model."""
    runs = mlflow.search_runs(
        experiment_names=[cfg.experiment_name],
        filter_string=f"tags.pipeline = '{pipeline}' and tags.model = '{cfg.deploy.model_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def granularity_state(cfg: Settings) -> GranularityState:
    m, name = cfg.monitoring, cfg.deploy.model_name
    state = GranularityState(
        granularity=cfg.granularity,
        model_name=name,
        live_mase_threshold=m.max_live_mase,
        drift_share_threshold=m.drift_share,
        training_period_s=m.training_period_hours * 3600.0,
    )
    champion = registry.alias_version(name)
    if champion:
        state.champion_version = int(champion)
        # what users get: the front door, ready (a champion server proved itself)
        state.probe_seconds = probe(f"{frontdoor.url(cfg)}/ready")
        state.serving_up = state.probe_seconds is not None
    last_training = last_run(cfg, TRAINING_PIPELINE)
    if last_training is not None:
        info = last_training.info
        state.last_training_ts = (info.end_time or info.start_time) / 1000.0
        state.last_training_ok = {"FINISHED": True, "FAILED": False, "KILLED": False}.get(
            info.status
        )
    monitor = last_run(cfg, MONITORING_PIPELINE)
    if monitor is not None:
        state.last_monitor_ts = monitor.info.start_time / 1000.0
        metrics = monitor.data.metrics
        live = live_from_metrics(metrics, cfg.pairs, ("live_mase", "live_coverage"))
        state.live_mase = {p: v["live_mase"] for p, v in live.items() if "live_mase" in v}
        state.live_coverage = {
            p: v["live_coverage"] for p, v in live.items() if "live_coverage" in v
        }
        state.drift_share = metrics.get("drift_share")
    return state
