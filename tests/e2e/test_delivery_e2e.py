"""Continuous delivery, proved by doing it: the CLI as a user runs it (subprocesses), with
processes killed at named points (CRYPTOCAST_FAILPOINT), a server that cannot start, two
runs at once, promotions, rollbacks and restarts. After each, what users see (registry
aliases and versions, models/<gran>_models/, the forecasts table, the answering server)
is checked against what it was.

The tests share one granularity's state, and each brings it to what it needs first
(:func:`at_version`): in file order they reuse each other's versions, and each passes
alone (``pytest -k <name>``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import CLI, ROOT, cli_env, run_cli, small_config

pytestmark = pytest.mark.e2e
NAME = "cryptocast-hour-delivery"
BTC, BOTH, THREE = "BTC/USDT", "BTC/USDT ETH/USDT", "BTC/USDT ETH/USDT BNB/USDT"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("delivery")
    small_config(  # runs killed inside a fit step must fit
        "hour",
        tmp,
        serve=True,
        deploy={"model_name": NAME, "timeout_s": 60},
        cache=False,
        source="sample",
    )
    small_config("day", tmp, serve=False, deploy={"model_name": f"{NAME}-day"})  # for status
    e = cli_env(tmp)
    run_cli(e, "setup")  # the stack this test process reads the registry through
    yield {"env": e, "models": tmp / "hour_models"}
    run_cli(e, "stop", "--gran", "hour", check=False)


def cli(env, *args, failpoint: str | None = None, check: bool = True):
    e = env["env"] | ({"CRYPTOCAST_FAILPOINT": failpoint} if failpoint else {})
    return run_cli(e, *args, check=check)


def train(env, pairs, **kw):
    return cli(env, "train", "--gran", "hour", "--pairs", pairs, **kw)


# the training run that registers each version: v1 serves BTC; v2 adds ETH and v3 adds
# BNB, which the champion does not serve, so each of them is promoted
LADDER = {1: BTC, 2: BOTH, 3: THREE}


def at_version(env, version: int, *, champion: bool = True) -> None:
    """Train until ``version`` is registered; with ``champion``, check it is the champion."""
    from cryptocast.delivery import registry
    from infra.stack import configure_mlflow

    configure_mlflow()
    for v, pairs in LADDER.items():
        registered = registry.version_table(NAME).get("version", [])
        if v <= version and v not in set(registered):
            train(env, pairs)
    if champion:
        assert registry.alias_version(NAME) == str(version)


def snapshot(env) -> dict:
    """What users see: registry, files, database, and which version answers."""
    from cryptocast.delivery import registry, store
    from infra import deployer
    from infra.stack import configure_mlflow

    configure_mlflow()
    champion = registry.alias_version(NAME)
    table = registry.version_table(NAME)
    engine = store.connect()
    rows = store.read_forecasts(engine, "hour", NAME)
    engine.dispose()
    manifest = env["models"] / "manifest.json"
    svc = deployer.running(NAME, champion) if champion else None
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


# third-party adverts and warnings a run must not print (issue 12: quiet, useful logs)
NOISE = ("Tip:", "litlogger", "LeafSpec", "pin_memory", "GPU available", "TPU available",
         "Downloading artifacts", "Traceback", "INFO mlflow")  # fmt: skip


def test_first_run_serves_v1(env):
    proc = train(env, BTC)
    output = proc.stdout + proc.stderr
    assert [n for n in NOISE if n in output] == []
    assert "Step `deploy` has finished" in output
    s = snapshot(env)
    assert s["champion"] == "1"
    assert s["answering"] == "1"
    assert {r["pair"] for r in s["forecasts"]} == {BTC}
    assert '"model_version": "1"' in s["manifest"]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out[int(d.name)] = (ppid, cmd)
    return out


def server_processes(model_name: str) -> set[int]:
    """The model-server daemons of ``model_name`` (their service file names it) and every
    process under them (uvicorn and its worker)."""
    procs = _processes()
    roots = set()
    for pid, (_, cmd) in procs.items():
        if "infra.model_server_daemon" in cmd and "--config-file" in cmd:
            path = Path(cmd.split("--config-file", 1)[1].split()[0])
            with contextlib.suppress(OSError):
                if model_name in path.read_text():
                    roots.add(pid)
    found, grew = set(roots), True
    while grew:
        more = {p for p, (ppid, _) in procs.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


@pytest.mark.parametrize(
    "failpoint",
    [
        "train.fit",
        # its new server spawned, not yet answering (its record was once written only
        # when it answered: `stop` and `status` did not see it)
        "deploy.server_starting",
        # BTC+ETH: the champion does not serve ETH, so this run promotes; killed at the
        # last moment before the commit, with its new server already answering
        "release.before_commit",
    ],
    ids=["during-training", "during-server-start", "during-deploy-before-commit"],
)
def test_a_killed_run_changes_nothing_and_leaves_no_process(env, failpoint):
    at_version(env, 1)
    before = snapshot(env)
    serving = server_processes(NAME)
    proc = train(env, BOTH, failpoint=failpoint, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(env) == before
    left = server_processes(NAME) - serving
    if failpoint != "train.fit":
        assert left, "the killed release had started a server"
    # the next `make status` (or `make train`) of the granularity finds and stops it
    status = cli(env, "status").stdout
    if left:
        assert f"stopped the model server(s) a killed release left: {NAME} v2" in status
    deadline = time.monotonic() + 15
    while left & server_processes(NAME) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left & server_processes(NAME), "a killed release's server survived"
    assert snapshot(env) == before


def test_a_server_that_cannot_start_keeps_the_old_one(env):
    at_version(env, 1)
    before = snapshot(env)
    proc = train(env, BOTH, failpoint="server.load_context", check=False)
    assert proc.returncode == 1
    assert "FAILED" in proc.stderr
    assert snapshot(env) == before


def test_promotion_serves_the_new_version_everywhere(env):
    at_version(env, 1)
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
    at_version(env, 2)
    before = snapshot(env)
    proc = train(env, BOTH)
    assert "decision is KEEP" in proc.stdout
    assert snapshot(env) == before


def test_rollback_twice_is_an_undo(env):
    at_version(env, 2)
    out = cli(env, "rollback", "--gran", "hour")
    assert f"rollback: {NAME} v1 is champion (previous: v2)" in out.stdout
    s = snapshot(env)
    assert (s["champion"], s["previous"], s["answering"]) == ("1", "2", "1")
    assert '"model_version": "1"' in s["manifest"]
    out = cli(env, "rollback", "--gran", "hour", "--json")
    assert json.loads(out.stdout)["version"] == "2"
    s = snapshot(env)
    assert (s["champion"], s["previous"], s["answering"]) == ("2", "1", "2")


def test_manual_promotion_is_recorded(env):
    import mlflow

    from cryptocast.delivery import registry

    at_version(env, 2)
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
    at_version(env, 2)
    before = snapshot(env)
    lock = env["models"].with_name(f".{env['models'].name}.lock")
    first = subprocess.Popen(
        [CLI, "train", "--gran", "hour", "--pairs", "ETH/USDT BTC/USDT"],
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
    at_version(env, 2)
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
    from infra import deployer

    at_version(env, 3)
    before = deployer.running(NAME, "3").prediction_url
    cli(env, "serve", "--gran", "hour")
    after = deployer.running(NAME, "3").prediction_url
    assert after != before  # a new server took over; the old one is gone
    assert len([s for s in deployer.servers(NAME) if s.is_running]) == 1
    cli(env, "stop", "--gran", "hour")
    assert deployer.running(NAME) is None
    out = cli(env, "predict", "--gran", "hour", check=False)
    assert out.returncode != 0
    assert "make serve GRAN=hour" in out.stderr
