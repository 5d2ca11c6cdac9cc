"""Prometheus metrics: the service's multiprocess counters, the state gauges, the
exporter's registry, and the alert rules / Grafana dashboard under observability/ checked
against what the exporter actually writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cryptocast.observability import exporter, telemetry
from cryptocast.observability.telemetry import GranularityState
from tests.conftest import ROOT

OBSERVABILITY = ROOT / "observability"

# what a scoring-server worker does: one good request, one bad, one crash
SERVER = """
from cryptocast.observability.telemetry import service_metrics
m = service_metrics("hour", "cryptocast-hour", "7")
with m.request(bad_request=ValueError):
    pass
m.predicted(["BTC/USDT", "ETH/USDT"])
for exc in (ValueError, RuntimeError):
    try:
        with m.request(bad_request=ValueError):
            raise exc("boom")
    except exc:
        pass
"""

# what the front door process does: two answers, a refusal, a dead server replaced
FRONT = """
from cryptocast.observability.telemetry import FrontDoorMetrics, multiprocess_metrics_dir
multiprocess_metrics_dir()
f = FrontDoorMetrics("hour")
f.request("/forecast", 200, 0.004)
f.request("/forecast", 200, 0.006)
f.request("/forecast", 422, 0.001)
f.switched("first", None)
f.upstream_died(None)
f.upstream_restarted(None)
f.switched("restart", None)
"""

FULL = {
    "granularity": "hour",
    "model_name": "cryptocast-hour",
    "live_mase_threshold": 20.0,
    "drift_share_threshold": 0.5,
    "training_period_s": 86400.0,
    "champion_version": 3,
    "serving_up": True,
    "probe_seconds": 0.002,
    "last_training_ts": 1.7e9,
    "last_training_ok": True,
    "last_monitor_ts": 1.7e9 + 60,
    "live_mase": {"BTC/USDT": 0.9},
    "live_coverage": {"BTC/USDT": 0.95},
    "drift_share": 0.25,
}


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.fixture(scope="module")
def exposition(tmp_path_factory) -> str:
    """/metrics text of an exporter over a worker's multiprocess files and a full state."""
    metrics_dir = tmp_path_factory.mktemp("metrics")
    env = os.environ | {telemetry.METRICS_DIR_ENV: str(metrics_dir), "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    for code in (SERVER, FRONT):
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    reg = exporter.registry(lambda: [GranularityState(**FULL)], metrics_dir)
    return generate_latest(reg).decode()


def test_service_counters_cross_the_process_boundary(exposition):
    got = samples(exposition)
    labels = {"granularity": "hour", "model": "cryptocast-hour", "model_version": "7"}

    def value(name, **extra):
        return got[(name, frozenset((labels | extra).items()))]

    assert value("cryptocast_requests_total") == 3
    assert value("cryptocast_request_errors_total", kind="bad_request") == 1
    assert value("cryptocast_request_errors_total", kind="internal") == 1
    assert value("cryptocast_predictions_total", pair="ETH/USDT") == 1
    assert value("cryptocast_request_latency_seconds_count") == 3
    assert value("cryptocast_request_latency_seconds_bucket", le="+Inf") == 3


def test_front_door_counters_cross_the_process_boundary(exposition):
    got = samples(exposition)
    hour = {"granularity": "hour"}
    ok = frozenset((hour | {"route": "/forecast", "code": "200"}).items())
    refused = frozenset((hour | {"route": "/forecast", "code": "422"}).items())
    assert got[("cryptocast_frontdoor_requests_total", ok)] == 2
    assert got[("cryptocast_frontdoor_requests_total", refused)] == 1
    latency = frozenset((hour | {"route": "/forecast"}).items())
    assert got[("cryptocast_frontdoor_request_latency_seconds_count", latency)] == 3
    for reason, count in (("first", 1), ("restart", 1), ("new version", 0)):
        key = frozenset((hour | {"reason": reason}).items())
        assert got[("cryptocast_frontdoor_upstream_switches_total", key)] == count
    assert got[("cryptocast_frontdoor_upstream_deaths_total", frozenset(hour.items()))] == 1
    assert got[("cryptocast_frontdoor_upstream_restarts_total", frozenset(hour.items()))] == 1


def test_state_gauges(exposition):
    got = samples(exposition)
    labels = {"granularity": "hour", "model": "cryptocast-hour"}
    assert got[("cryptocast_champion_version", frozenset(labels.items()))] == 3
    assert got[("cryptocast_serving_up", frozenset(labels.items()))] == 1
    assert got[("cryptocast_live_mase", frozenset((labels | {"pair": "BTC/USDT"}).items()))] == 0.9
    assert got[("cryptocast_training_period_seconds", frozenset(labels.items()))] == 86400


def test_unknown_state_is_absent_not_zero():
    bare = {k: FULL[k] for k in list(FULL)[:5]}
    names = {
        s.name for fam in telemetry.state_families([GranularityState(**bare)]) for s in fam.samples
    }
    assert "cryptocast_serving_up" in names  # no champion: not served, 0
    assert "cryptocast_champion_version" not in names
    assert "cryptocast_last_training_success" not in names
    assert "cryptocast_drift_share" not in names


def test_no_metrics_dir_no_service_metrics(monkeypatch):
    monkeypatch.delenv(telemetry.METRICS_DIR_ENV, raising=False)
    assert telemetry.service_metrics("hour", "cryptocast-hour", "1") is None


def test_state_is_cached_and_survives_a_failing_read():
    calls = []

    def states():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("database is locked")
        return [GranularityState(**FULL)]

    collector = exporter.StateCollector(states, ttl_s=3600)
    assert collector.current() == collector.current()
    assert len(calls) == 1
    calls.clear()
    collector = exporter.StateCollector(states, ttl_s=0)
    assert collector.current()[0].champion_version == 3
    assert collector.current()[0].champion_version == 3  # read failed: the last good one
    assert len(calls) == 2


# --- observability/: alert rules and dashboard ---------------------------------------------

PROMETHEUS_BUILTIN = {"up"}  # written by Prometheus itself for every scrape target


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (ours are prefixed ``cryptocast_``)."""
    names = set(re.findall(r"\bcryptocast_[a-z0-9_]+\b", expr))
    names |= {n for n in re.findall(r"\b([a-z_]+)\s*\{", expr) if n in PROMETHEUS_BUILTIN}
    return names


def rules() -> list[dict]:
    doc = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def dashboard() -> dict:
    return json.loads((OBSERVABILITY / "grafana" / "dashboards" / "cryptocast.json").read_text())


def test_rules_cover_the_required_alerts():
    by_name = {r["alert"]: r for r in rules()}
    assert {
        "CryptocastExporterDown",
        "CryptocastServiceDown",
        "CryptocastHighErrorRate",
        "CryptocastHighLatencyP99",
        "CryptocastLiveMaseHigh",
        "CryptocastDriftDetected",
        "CryptocastTrainingStale",
    } <= set(by_name)
    for r in by_name.values():
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        assert r["annotations"]["summary"], r["alert"]
    # what each rule does is checked by promtool on series (test_promtool): every rule has
    # a case there in which it fires
    tests = yaml.safe_load((OBSERVABILITY / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert set(by_name) <= fired, f"rules never seen firing: {set(by_name) - fired}"


def test_every_metric_in_rules_and_panels_is_exported(exposition):
    exported = {s.name for fam in text_string_to_metric_families(exposition) for s in fam.samples}
    used = {}
    for r in rules():
        for name in metric_names(r["expr"]):
            used.setdefault(name, []).append(f"rule {r['alert']}")
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                used.setdefault(name, []).append(f"panel {panel['title']!r}")
    assert used, "no metric found in the rules and panels"
    missing = {n: where for n, where in used.items() if n not in exported | PROMETHEUS_BUILTIN}
    assert not missing, f"used but not exported: {missing}"
    # and every state gauge is shown or alerted on somewhere
    assert {telemetry.LIVE_MASE, telemetry.DRIFT_SHARE, telemetry.CHAMPION_VERSION} <= set(used)


def test_dashboard_and_compose_are_wired():
    ds = yaml.safe_load(
        (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    uids = {t["datasource"]["uid"] for p in dashboard()["panels"] for t in p["targets"]}
    assert uids == {ds["uid"]}
    compose = yaml.safe_load((OBSERVABILITY / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        assert service["network_mode"] == "host"  # the exporter listens on 127.0.0.1
        for volume in service["volumes"]:
            assert (OBSERVABILITY / volume.split(":")[0]).exists(), volume
    scrape = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9464"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    not PROMTOOL, reason="promtool not installed (Debian: apt-get install prometheus)"
)
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-config-and-rules", "alert-unit-tests"],
)
def test_promtool(args):
    proc = subprocess.run(
        [PROMTOOL, *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_metric_names_parser():
    assert metric_names('up{job="x"} == 0') == {"up"}
    assert metric_names(
        "sum by (granularity) (rate(cryptocast_requests_total[5m])) > on (g) cryptocast_x"
    ) == {"cryptocast_requests_total", "cryptocast_x"}
