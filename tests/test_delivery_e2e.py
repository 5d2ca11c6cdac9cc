"""Continuous delivery, proved by doing it: the CLI as a user runs it (subprocesses), with
processes killed at named points (CRYPTOCAST_FAILPOINT), a server that cannot start, two
runs at once, promotions, rollbacks and restarts. After each, what users see (registry
aliases and versions, models/<gran>_models/, the forecasts table, the answering server)
is checked against what it was.

The tests share one granularity's state and run in file order.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import ROOT, cli_env, run_cli, small_config

pytestmark = pytest.mark.e2e
NAME = "cryptocast-hour-delivery"
BTC, BOTH, THREE = "BTC/USDT", "BTC/USDT ETH/USDT", "BTC/USDT ETH/USDT BNB/USDT"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("delivery")
    small_config(
        "hour", tmp, serve=True, deploy={"model_name": NAME, "timeout_s": 60}, source="sample"
    )
    e = cli_env(tmp)
    yield {"env": e, "models": tmp / "hour_models"}
    subprocess.run(
        [sys.executable, "run.py", "stop", "--gran", "hour"], cwd=ROOT, env=e, capture_output=True
    )


def cli(env, *args, failpoint: str | None = None, check: bool = True):
    e = env["env"] | ({"CRYPTOCAST_FAILPOINT": failpoint} if failpoint else {})
    return run_cli(e, *args, check=check)


def train(env, pairs, **kw):
    return cli(env, "train", "--gran", "hour", "--pairs", pairs, **kw)


def snapshot(env) -> dict:
    """What users see: registry, files, database, and which version answers."""
    from cryptocast import registry, store
    from pipelines.stack import configure_mlflow
    from steps import serving

    configure_mlflow()
    champion = registry.alias_version(NAME)
    table = registry.version_table(NAME)
    engine = store.connect()
    rows = store.read_forecasts(engine, "hour", NAME)
    engine.dispose()
    manifest = env["models"] / "manifest.json"
    svc = serving.running(NAME, champion) if champion else None
    answering = None
    if svc is not None:
        resp = requests.post(
            svc.prediction_url,
            timeout=30,
            json={"dataframe_records": [{"pair": BTC, "horizon": 1}]},
        )
        answering = resp.json()["predictions"][0]["model_version"]
    return {
        "champion": champion,
        "previous": registry.alias_version(NAME, registry.PREVIOUS),
        "versions": sorted(int(v) for v in table.get("version", [])),
        "manifest": manifest.read_text() if manifest.exists() else None,
        "forecasts": rows.drop(columns=["issued_at"]).to_dict("records"),
        "issued": sorted(rows["issued_at"].astype(str)),
        "answering": answering,
    }


def test_first_run_serves_v1(env):
    train(env, BTC)
    s = snapshot(env)
    assert s["champion"] == "1"
    assert s["answering"] == "1"
    assert {r["pair"] for r in s["forecasts"]} == {BTC}
    assert '"model_version": "1"' in s["manifest"]


def test_kill_during_training_changes_nothing(env):
    before = snapshot(env)
    proc = train(env, BOTH, failpoint="train.fit", check=False)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(env) == before


def test_kill_during_deploy_changes_nothing(env):
    before = snapshot(env)
    # BTC+ETH: the champion does not serve ETH, so this run promotes; killed at the last
    # moment before the commit, with its new server already answering
    proc = train(env, BOTH, failpoint="release.before_commit", check=False)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(env) == before


def test_a_server_that_cannot_start_keeps_the_old_one(env):
    before = snapshot(env)
    proc = train(env, BOTH, failpoint="server.load_context", check=False)
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    assert snapshot(env) == before


def test_promotion_serves_the_new_version_everywhere(env):
    proc = train(env, BOTH)
    assert "v2 is champion (previous: v1)" in proc.stdout
    s = snapshot(env)
    assert (s["champion"], s["previous"], s["answering"]) == ("2", "1", "2")
    assert '"model_version": "2"' in s["manifest"]
    assert {(r["pair"], r["model_version"]) for r in s["forecasts"]} >= {
        (BTC, "2"),
        ("ETH/USDT", "2"),
    }


def test_keep_changes_nothing(env):
    before = snapshot(env)
    proc = train(env, BOTH)
    assert "decision is KEEP" in proc.stdout
    assert snapshot(env) == before


def test_rollback_twice_is_an_undo(env):
    out = cli(env, "rollback", "--gran", "hour")
    assert '"version": "1"' in out.stdout
    s = snapshot(env)
    assert (s["champion"], s["previous"], s["answering"]) == ("1", "2", "1")
    assert '"model_version": "1"' in s["manifest"]
    cli(env, "rollback", "--gran", "hour")
    s = snapshot(env)
    assert (s["champion"], s["previous"], s["answering"]) == ("2", "1", "2")


def test_manual_promotion_is_recorded(env):
    import mlflow

    from cryptocast import registry

    cli(env, "promote", "--gran", "hour", "--version", "1", "--reason", "hotfix test")
    assert snapshot(env)["answering"] == "1"
    tags = registry.client().get_model_version(NAME, "1").tags
    assert tags["promoted_by"] == "manual_promote"
    assert tags["promotion_reason"] == "hotfix test"
    runs = mlflow.search_runs(
        experiment_names=["cryptocast-hour"],
        output_format="list",
        filter_string="tags.event = 'manual_promote'",
    )
    assert any(r.data.tags["to_version"] == "1" for r in runs)
    bad = cli(env, "promote", "--gran", "hour", "--version", "99", check=False)
    assert bad.returncode != 0
    assert "no version 99" in bad.stderr
    cli(env, "promote", "--gran", "hour", "--version", "2")


def test_two_runs_at_once(env):
    before = snapshot(env)
    lock = env["models"].with_name(f".{env['models'].name}.lock")
    first = subprocess.Popen(
        [sys.executable, "run.py", "train", "--gran", "hour", "--pairs", "ETH/USDT BTC/USDT"],
        cwd=ROOT,
        env=env["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while str(first.pid) not in (lock.read_text() if lock.exists() else ""):
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        second = train(env, BOTH, check=False)
        assert second.returncode != 0
        assert "another hour training run is in progress" in second.stderr
        assert f"pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
    assert snapshot(env) == before


def test_kill_after_commit_is_healed_by_serve(env):
    # BNB is new to the champion: promote; killed right after the aliases moved
    proc = train(env, THREE, failpoint="release.after_commit", check=False)
    assert proc.returncode == -signal.SIGKILL
    s = snapshot(env)
    assert s["champion"] == "3"
    assert '"model_version": "3"' not in (s["manifest"] or "")  # not yet rolled forward
    cli(env, "serve", "--gran", "hour")
    s = snapshot(env)
    assert (s["champion"], s["answering"]) == ("3", "3")
    assert '"model_version": "3"' in s["manifest"]
    assert ("BNB/USDT", "3") in {(r["pair"], r["model_version"]) for r in s["forecasts"]}


def test_serve_restarts_without_downtime_and_stop_stops(env):
    from steps import serving

    before = serving.running(NAME, "3").prediction_url
    cli(env, "serve", "--gran", "hour")
    after = serving.running(NAME, "3").prediction_url
    assert after != before  # a new server took over; the old one is gone
    assert len([s for s in serving.servers(NAME) if s.is_running]) == 1
    cli(env, "stop", "--gran", "hour")
    assert serving.running(NAME) is None
    out = cli(env, "predict", "--gran", "hour", check=False)
    assert out.returncode != 0
    assert "make serve GRAN=hour" in out.stderr
