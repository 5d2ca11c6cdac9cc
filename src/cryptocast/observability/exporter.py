"""The Prometheus exporter that runs beside the served models (``make exporter``).

``GET /metrics`` on 127.0.0.1 answers, in Prometheus text format:

* the forecast service's counters and latency histogram, read from the multiprocess
  files the served models write (``cryptocast.observability.telemetry.ServiceMetrics``);
* the system's state, from ``states()`` (a callable, so that this module needs neither
  ZenML nor MLflow): champion version, a live ``/ping`` probe of the champion's server,
  last training time and outcome, live MASE and drift share from the last monitoring run.
  ``states()`` is called at most once per ``ttl_s`` seconds, however often it is scraped.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptocast.observability.telemetry import GranularityState, state_families

States = Callable[[], list[GranularityState]]


class StateCollector:
    """Prometheus collector over ``states()``, cached for ``ttl_s`` seconds."""

    def __init__(self, states: States, ttl_s: float = 10.0) -> None:
        self._states, self._ttl = states, ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GranularityState]] | None = None

    def current(self) -> list[GranularityState]:
        """The states, at most ``ttl_s`` old; if gathering them fails, the last good ones
        (a scrape never fails because MLflow or ZenML hiccupped), or none."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl:
                try:
                    self._cached = (now, self._states())
                except Exception as exc:
                    print(f"cryptocast exporter: could not read the state: {exc}", file=sys.stderr)
                    self._cached = (now, self._cached[1] if self._cached else [])
            return self._cached[1]

    def collect(self):
        """The state gauges of every granularity, for prometheus-client's scrape (read at most every
        ``ttl_s``)."""
        yield from state_families(self.current())


def registry(states: States, metrics_dir: Path, ttl_s: float = 10.0):
    """A registry with the service's multiprocess metrics and the state gauges."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    metrics_dir.mkdir(parents=True, exist_ok=True)
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=str(metrics_dir))
    reg.register(StateCollector(states, ttl_s))
    return reg


def serve(
    states: States, metrics_dir: Path, *, port: int, host: str = "127.0.0.1", ttl_s: float = 10.0
) -> None:
    """Serve ``/metrics`` until interrupted."""
    from prometheus_client import start_http_server

    reg = registry(states, metrics_dir, ttl_s)
    server, thread = start_http_server(port, addr=host, registry=reg)
    print(f"cryptocast exporter: http://{host}:{port}/metrics (Ctrl+C stops it)", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
