"""Prometheus metrics of the forecast service, and of the system around it.

Two producers, one exporter (``cryptocast.observability.exporter``):

* the served model (``cryptocast.serving.model``) counts requests, errors, predictions per
  pair and times each request with :class:`ServiceMetrics`. MLflow's scoring server can
  run several worker processes, so the counters live in prometheus-client's multiprocess
  files under ``$CRYPTOCAST_METRICS_DIR`` (the CLI sets it to :func:`cryptocast.paths.metrics_dir`);
* the exporter reads those files, and adds gauges built by :func:`state_families` from a
  :class:`GranularityState` per granularity (champion, serving probe, last training,
  last monitor run, thresholds from the config).

Every metric name is a constant here: the alert rules and the Grafana dashboard under
``monitoring/`` are tested against the names the exporter actually writes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptocast.paths import METRICS_DIR_ENV

# the forecast service (written by the served model)
REQUESTS = "cryptocast_requests"  # counter: cryptocast_requests_total
ERRORS = "cryptocast_request_errors"  # counter, label kind = bad_request | internal
LATENCY = "cryptocast_request_latency_seconds"  # histogram, inside the model
PREDICTIONS = "cryptocast_predictions"  # counter, label pair
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# the front door (written by the front door process, one per granularity)
FRONT_REQUESTS = "cryptocast_frontdoor_requests"  # counter, labels route, code
FRONT_LATENCY = "cryptocast_frontdoor_request_latency_seconds"  # histogram, label route
FRONT_SWITCHES = "cryptocast_frontdoor_upstream_switches"  # counter, label reason
FRONT_DEATHS = "cryptocast_frontdoor_upstream_deaths"  # counter: a model server died
FRONT_RESTARTS = "cryptocast_frontdoor_upstream_restarts"  # counter: ... and was replaced

# the system (written by the exporter)
SERVING_UP = "cryptocast_serving_up"
PROBE_SECONDS = "cryptocast_serving_probe_seconds"
CHAMPION_VERSION = "cryptocast_champion_version"
LAST_TRAINING = "cryptocast_last_training_timestamp_seconds"
LAST_TRAINING_SUCCESS = "cryptocast_last_training_success"
TRAINING_PERIOD = "cryptocast_training_period_seconds"
LAST_MONITOR = "cryptocast_last_monitor_timestamp_seconds"
LIVE_MASE = "cryptocast_live_mase"
LIVE_COVERAGE = "cryptocast_live_coverage"
DRIFT_SHARE = "cryptocast_drift_share"
LIVE_MASE_THRESHOLD = "cryptocast_live_mase_threshold"
DRIFT_SHARE_THRESHOLD = "cryptocast_drift_share_threshold"


class ServiceMetrics:
    """Request counters and latency of one served model (one granularity)."""

    def __init__(self, granularity: str, model: str, model_version: str) -> None:
        from prometheus_client import Counter, Histogram

        labels = {"granularity": granularity, "model": model, "model_version": model_version}
        self._requests = Counter(REQUESTS, "Forecast requests answered or refused", [*labels])
        self._errors = Counter(ERRORS, "Forecast requests that failed", [*labels, "kind"])
        self._latency = Histogram(
            LATENCY, "Time spent answering one request", [*labels], buckets=LATENCY_BUCKETS
        )
        self._predictions = Counter(PREDICTIONS, "Pairs forecast", [*labels, "pair"])
        self.labels = labels
        # children exist from the start, so a rate is 0 rather than absent
        self._requests.labels(**labels)
        for kind in ("bad_request", "internal"):
            self._errors.labels(**labels, kind=kind)

    @contextmanager
    def request(self, bad_request: type[Exception]) -> Iterator[None]:
        """Count and time one request; ``bad_request`` exceptions are the caller's fault."""
        start = time.perf_counter()
        try:
            yield
        except bad_request:
            self._errors.labels(**self.labels, kind="bad_request").inc()
            raise
        except Exception:
            self._errors.labels(**self.labels, kind="internal").inc()
            raise
        finally:
            self._requests.labels(**self.labels).inc()
            self._latency.labels(**self.labels).observe(time.perf_counter() - start)

    def predicted(self, pairs: list[str]) -> None:
        """Count one prediction for each of ``pairs``."""
        for pair in pairs:
            self._predictions.labels(**self.labels, pair=pair).inc()


class FrontDoorMetrics:
    """Every request at the front door (the malformed ones too), its latency, and what
    happened to the model server behind it. Implements ``frontdoor.router.Events``."""

    def __init__(self, granularity: str) -> None:
        from prometheus_client import Counter, Histogram

        self.granularity = granularity
        g = ["granularity"]
        self._requests = Counter(
            FRONT_REQUESTS, "Requests at the front door", [*g, "route", "code"]
        )
        self._latency = Histogram(
            FRONT_LATENCY,
            "Time to answer at the front door",
            [*g, "route"],
            buckets=LATENCY_BUCKETS,
        )
        self._switches = Counter(FRONT_SWITCHES, "Model server changes", [*g, "reason"])
        self._deaths = Counter(FRONT_DEATHS, "Model servers that stopped answering", g)
        self._restarts = Counter(FRONT_RESTARTS, "Dead model servers replaced", g)
        for reason in ("first", "new version", "new server", "restart"):
            self._switches.labels(granularity, reason)
        self._deaths.labels(granularity)
        self._restarts.labels(granularity)

    def request(self, route: str, code: int, seconds: float) -> None:
        """Count a request at ``route`` answered with ``code`` and record its latency."""
        self._requests.labels(self.granularity, route, str(code)).inc()
        self._latency.labels(self.granularity, route).observe(seconds)

    def switched(self, reason: str, upstream) -> None:
        """Count a change of model server, by ``reason``."""
        self._switches.labels(self.granularity, reason).inc()

    def upstream_died(self, upstream) -> None:
        """Count a model server that stopped answering."""
        self._deaths.labels(self.granularity).inc()

    def upstream_restarted(self, upstream) -> None:
        """Count a dead model server replaced by a fresh one."""
        self._restarts.labels(self.granularity).inc()


def multiprocess_metrics_dir() -> Path | None:
    """Make prometheus-client write to ``$CRYPTOCAST_METRICS_DIR`` (multiprocess files, read
    by the exporter); None when that is unset. Must run before anything imports
    prometheus_client in this process: prometheus-client picks its storage when first
    imported."""
    directory = os.environ.get(METRICS_DIR_ENV)
    if not directory:
        return None
    if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        print(
            "cryptocast: prometheus_client was imported before the metrics directory was "
            "set; metrics are off in this process",
            file=sys.stderr,
        )
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return Path(directory)


def service_metrics(granularity: str, model: str, model_version: str) -> ServiceMetrics | None:
    """:class:`ServiceMetrics` writing to ``$CRYPTOCAST_METRICS_DIR`` (multiprocess files),
    or None when that is unset. Must run before anything imports prometheus_client in this
    process: prometheus-client picks its storage when first imported."""
    if multiprocess_metrics_dir() is None:
        return None
    return ServiceMetrics(granularity, model, model_version)


@dataclass
class GranularityState:
    """What the exporter knows about one granularity at scrape time (None: unknown)."""

    granularity: str
    model_name: str
    live_mase_threshold: float
    drift_share_threshold: float
    training_period_s: float
    champion_version: int | None = None
    serving_up: bool = False
    probe_seconds: float | None = None
    last_training_ts: float | None = None
    last_training_ok: bool | None = None
    last_monitor_ts: float | None = None
    live_mase: dict[str, float] = field(default_factory=dict)
    live_coverage: dict[str, float] = field(default_factory=dict)
    drift_share: float | None = None


def state_families(states: list[GranularityState]) -> list:
    """Gauge families for the system state (pure: states in, metric families out)."""
    from prometheus_client.core import GaugeMetricFamily

    def family(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=["granularity", "model", *extra])

    f = {
        SERVING_UP: family(SERVING_UP, "1 if the front door is ready (a champion server answers)"),
        PROBE_SECONDS: family(PROBE_SECONDS, "Duration of the front door's /ready probe"),
        CHAMPION_VERSION: family(CHAMPION_VERSION, "Registered version with alias champion"),
        LAST_TRAINING: family(LAST_TRAINING, "End (or start) of the last training run"),
        LAST_TRAINING_SUCCESS: family(LAST_TRAINING_SUCCESS, "1 if the last training run ended"),
        TRAINING_PERIOD: family(TRAINING_PERIOD, "Expected time between training runs"),
        LAST_MONITOR: family(LAST_MONITOR, "Start of the last monitoring run"),
        LIVE_MASE: family(LIVE_MASE, "Live MASE of the champion (last monitor run)", ("pair",)),
        LIVE_COVERAGE: family(LIVE_COVERAGE, "Live interval coverage", ("pair",)),
        DRIFT_SHARE: family(DRIFT_SHARE, "Share of (pair, feature) drifted (last monitor run)"),
        LIVE_MASE_THRESHOLD: family(LIVE_MASE_THRESHOLD, "monitoring.max_live_mase"),
        DRIFT_SHARE_THRESHOLD: family(DRIFT_SHARE_THRESHOLD, "monitoring.drift_share"),
    }
    for s in states:
        labels = [s.granularity, s.model_name]
        f[SERVING_UP].add_metric(labels, 1.0 if s.serving_up else 0.0)
        f[TRAINING_PERIOD].add_metric(labels, s.training_period_s)
        f[LIVE_MASE_THRESHOLD].add_metric(labels, s.live_mase_threshold)
        f[DRIFT_SHARE_THRESHOLD].add_metric(labels, s.drift_share_threshold)
        optional = {
            PROBE_SECONDS: s.probe_seconds,
            CHAMPION_VERSION: s.champion_version,
            LAST_TRAINING: s.last_training_ts,
            LAST_TRAINING_SUCCESS: None if s.last_training_ok is None else int(s.last_training_ok),
            LAST_MONITOR: s.last_monitor_ts,
            DRIFT_SHARE: s.drift_share,
        }
        for name, value in optional.items():
            if value is not None:
                f[name].add_metric(labels, float(value))
        for pair, value in s.live_mase.items():
            f[LIVE_MASE].add_metric([*labels, pair], value)
        for pair, value in s.live_coverage.items():
            f[LIVE_COVERAGE].add_metric([*labels, pair], value)
    return list(f.values())
