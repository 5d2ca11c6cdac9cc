"""make bench cleans up after itself: no model server or daemon of its temporary ZenML
home outlives it (``cryptocast stop``, then signals for anything left)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from scripts.bench import cleanup, processes_of

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"


def test_cleanup_stops_every_process_of_the_bench_home(tmp_path):
    home = tmp_path / "bench-home"
    home.mkdir()
    env = os.environ | {"ZENML_CONFIG_PATH": str(home), "CRYPTOCAST_CONFIG_DIR": str(home)}
    # like a daemon (the home in its command line) and a server (in its environment),
    # one of them deaf to SIGTERM
    by_args = subprocess.Popen([sys.executable, "-c", STUBBORN, str(home / "local_stores")])
    by_env = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    time.sleep(1.0)
    assert {by_args.pid, by_env.pid} <= set(processes_of(home))
    left = cleanup("hour", env, home, grace_s=5)
    assert sorted(left) == sorted([by_args.pid, by_env.pid])  # said loudly, then stopped
    assert by_args.wait(timeout=10) is not None
    assert by_env.wait(timeout=10) is not None
    assert processes_of(home) == []
    assert not home.exists()
