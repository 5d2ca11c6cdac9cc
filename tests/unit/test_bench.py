"""make bench cleans up after itself: no model server or daemon of its temporary ZenML
home outlives it (``cryptocast stop``, then signals for anything left)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from scripts.bench_common import cleanup, processes_of
from scripts.bench_plain import plain

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


@pytest.mark.slow
def test_cleanup_stops_every_process_of_the_bench_home(tmp_path):
    home = tmp_path / "bench-home"
    home.mkdir()
    env = os.environ | {"ZENML_CONFIG_PATH": str(home), "CRYPTOCAST_CONFIG_DIR": str(home)}
    # like a daemon (the home in its command line) and a server (in its environment),
    # one of them deaf to SIGTERM
    by_args = subprocess.Popen([sys.executable, "-c", STUBBORN, str(home / "local_stores")])
    by_env = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    deadline = time.monotonic() + 10  # until both have started
    while not {by_args.pid, by_env.pid} <= set(processes_of(home)):
        assert time.monotonic() < deadline, "the two processes did not start"
        time.sleep(0.05)
    left = cleanup("hour", env, home, grace_s=1)
    assert sorted(left) == sorted([by_args.pid, by_env.pid])  # said loudly, then stopped
    assert by_args.wait(timeout=10) is not None
    assert by_env.wait(timeout=10) is not None
    assert processes_of(home) == []
    assert not home.exists()


@pytest.mark.e2e
def test_plain_run_serves_what_it_trained(tmp_path):
    """The plain run writes, saves and serves a bundle (it once lacked the multi-series
    model's volumes and its server never answered)."""
    import yaml
    from conftest import small_config

    config = small_config("hour", tmp_path, serve=True)
    run = yaml.safe_load(config.read_text())
    candidates = run["parameters"]["config"]["candidates"]  # the multi-series one, quickly
    for name in ("drift", "lightgbm", "nhits"):
        del candidates[name]
    candidates["lightgbm_global"]["params"].update(n_estimators=20, lags=24)
    config.write_text(yaml.safe_dump(run))
    out = tmp_path / "plain.json"
    plain("hour", out, ["BTC/USDT", "ETH/USDT"], "config", config)
    times = json.loads(out.read_text())
    assert times["threads"] >= 1
    assert times["deploy"] > 0
    assert times["total"] >= times["train_evaluate"] + times["deploy"]
