"""The stable front door, end to end: a client calls one address without pause while a
promotion, two rollbacks, `cryptocast serve` and a killed model server happen; not one
request fails, and the answering version only moves forward through the releases."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import cli_env, run_cli, small_config

pytestmark = pytest.mark.e2e
NAME = "cryptocast-hour-front"
MIXED = {"records": [{"pair": "BTC/USDT", "horizon": 3}, {"pair": "ETH/USDT"}]}


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    from cryptocast.runconfig import load_settings
    from infra import frontdoor

    tmp = tmp_path_factory.mktemp("front")
    path = small_config(
        "hour", tmp, serve=True, deploy={"model_name": NAME, "timeout_s": 60}, source="sample"
    )
    env = cli_env(tmp)
    run_cli(env, "train", "--gran", "hour", "--pairs", "BTC/USDT ETH/USDT")  # v1, starts it
    cfg = load_settings(path)
    yield {"env": env, "url": frontdoor.url(cfg), "cfg": cfg}
    run_cli(env, "stop", "--gran", "hour", check=False)


class Hammer(threading.Thread):
    """One client calling the front door back to back; every answer recorded."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = url, threading.Event()
        self.answers: list[tuple[float, float, str]] = []  # sent, received, version
        self.errors: list[str] = []

    def run(self) -> None:
        session = requests.Session()
        while not self.done.is_set():
            sent = time.time()
            try:
                resp = session.post(f"{self.url}/forecast", json=MIXED, timeout=90)
                if resp.status_code == 200:
                    self.answers.append((sent, time.time(), resp.json()["model_version"]))
                else:
                    self.errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
            time.sleep(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=120)


def test_the_readme_request_answers_mixed_records(front):
    resp = requests.post(f"{front['url']}/forecast", json=MIXED, timeout=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    counts = {}
    for f in body["forecasts"]:
        counts[f["pair"]] = counts.get(f["pair"], 0) + 1
        # the quantiles reach clients as an object, the interval being two of them
        assert set(f["quantiles"]) == {"0.05", "0.1", "0.5", "0.9", "0.95"}
        assert (f["quantiles"]["0.1"], f["quantiles"]["0.9"]) == (f["lower"], f["upper"])
    assert counts == {"BTC/USDT": 3, "ETH/USDT": 24}
    assert body["model_name"] == NAME


def test_mlflows_own_scoring_client_works_unchanged(front):
    """It got 404 on /ping, and 422 for the dataframe_split its invoke sends."""
    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = front["url"].removeprefix("http://").rsplit(":", 1)
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)
    frame = pd.DataFrame([{"pair": "BTC/USDT", "horizon": 2}, {"pair": "ETH/USDT", "horizon": 1}])
    rows = client.invoke(frame).get_predictions()
    assert rows.groupby("pair").size().to_dict() == {"BTC/USDT": 2, "ETH/USDT": 1}
    assert set(rows["model_name"]) == {NAME}
    with pytest.raises(Exception, match=r"error code 400.*unknown_pair"):
        client.invoke(pd.DataFrame([{"pair": "DOGE/USDT"}]))


def _versions(answers) -> list[str]:
    """The answering versions in order, repeats collapsed: [1, 1, 2, 2, 1] -> [1, 2, 1]."""
    out: list[str] = []
    for _, _, v in sorted(answers):
        if not out or out[-1] != v:
            out.append(v)
    return out


def _counter(name: str, granularity: str = "hour") -> float:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from cryptocast.observability import exporter
    from cryptocast.paths import metrics_dir

    text = generate_latest(exporter.registry(list, metrics_dir())).decode()
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == f"{name}_total" and s.labels.get("granularity") == granularity
    )


def test_zero_failed_requests_across_releases_and_a_crash(front):
    from cryptocast.delivery import registry
    from cryptocast.observability import telemetry
    from infra import deployer
    from infra.stack import configure_mlflow

    env, url = front["env"], front["url"]
    deaths, restarts = _counter(telemetry.FRONT_DEATHS), _counter(telemetry.FRONT_RESTARTS)
    hammer = Hammer(url)
    hammer.start()
    try:
        time.sleep(1)
        # a promotion: BNB is new to the champion
        run_cli(env, "train", "--gran", "hour", "--pairs", "BTC/USDT ETH/USDT BNB/USDT")
        configure_mlflow()
        assert registry.alias_version(NAME) == "2"
        promoted_at = registry.client().get_model_version(NAME, "2").tags["promoted_at"]
        time.sleep(1)
        run_cli(env, "rollback", "--gran", "hour")  # -> v1
        time.sleep(1)
        run_cli(env, "rollback", "--gran", "hour")  # -> v2 again
        time.sleep(1)
        run_cli(env, "serve", "--gran", "hour")  # a fresh server of v2 takes over
        time.sleep(1)
        # a crash of the model server: SIGKILL, nobody restarts it by hand
        victim = deployer.running(NAME, "2")
        os.kill(victim.status.pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = requests.get(f"{url}/version", timeout=5).json()
            if info["upstream"] != victim.prediction_url:
                break
            time.sleep(0.5)
        assert info["upstream"] != victim.prediction_url, "the dead server was not replaced"
        time.sleep(2)
    finally:
        hammer.stop()
    assert hammer.errors == []
    assert len(hammer.answers) > 50
    assert _versions(hammer.answers) == ["1", "2", "1", "2"]
    # v2 first answered after its commit (the alias move), within seconds of it
    first_v2 = min(sent for sent, _, v in hammer.answers if v == "2")
    committed = datetime.fromisoformat(promoted_at).timestamp()  # whole seconds
    assert committed - 1 <= first_v2 <= committed + 5
    # the death and the restart are in the front door's metrics
    assert _counter(telemetry.FRONT_DEATHS) >= deaths + 1
    assert _counter(telemetry.FRONT_RESTARTS) >= restarts + 1
    assert deployer.running(NAME, "2") is not None


def test_fuzzed_from_its_openapi_contract(front, tmp_path):
    """schemathesis generates requests from /openapi.json, valid and invalid: no server
    error, and every answer follows the documented schema and status codes."""
    exe = str(Path(sys.executable).parent / "schemathesis")
    junit = tmp_path / "fuzz.xml"
    # not checked: that every schema-valid request is accepted. The schema cannot say
    # which pairs the champion serves (a run's PAIRS decide) nor that candles must continue
    # its history; those are refused with 400 and the model's reason.
    args = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
    args += ["--max-examples", "100", "--seed", "1", "--request-timeout", "30"]
    args += ["--report", "junit", "--report-junit-path", str(junit)]
    proc = subprocess.run(
        [exe, "run", f"{front['url']}/openapi.json", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=front["env"],
        cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    generated = re.findall(r"(\d+) generated", proc.stdout)
    assert generated, proc.stdout[-2000:]
    assert int(generated[0]) >= 300, proc.stdout[-2000:]


def test_a_killed_front_door_answers_again_by_itself(front):
    """SIGKILL the front door's server: its keeper starts it again, nobody acting; the
    same address answers within seconds, as the same front door (token, pid record)."""
    from infra import frontdoor, supervisor

    state = frontdoor.status(front["cfg"])
    assert state is not None
    [server] = supervisor.children(state["pid"])
    os.kill(server, signal.SIGKILL)
    t0 = time.monotonic()
    answered = None
    while time.monotonic() - t0 < 60 and answered is None:
        time.sleep(0.2)
        try:
            resp = requests.post(f"{front['url']}/forecast", json=MIXED, timeout=30)
            answered = resp.status_code if resp.status_code == 200 else None
        except requests.RequestException:
            pass
    assert answered == 200, "the killed front door was not started again"
    again = frontdoor.status(front["cfg"])
    assert again is not None
    assert again["token"] == state["token"]
    assert again["pid"] == state["pid"]
    assert supervisor.children(state["pid"]) != [server]
    assert "restarting it" in Path(state["log"]).read_text()
