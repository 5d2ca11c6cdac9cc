import os
import signal
import subprocess
import sys

import pytest

from cryptocast import failpoints
from cryptocast.locks import Busy, exclusive, holder, lock_path
from cryptocast.serving.bundle import staging_dir

HOLD = """
import sys, time
from cryptocast.locks import exclusive
with exclusive(sys.argv[1], "hour training run"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder_process(path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_is_refused_with_a_clear_message(tmp_path):
    path = lock_path(tmp_path / "hour_models")
    assert path.name == ".hour_models.lock"
    proc = _holder_process(path)
    try:
        # the holder's label, not the refused caller's
        pattern = rf"another hour training run is in progress \(pid {proc.pid}"
        with pytest.raises(Busy, match=pattern), exclusive(path, "hour deploy"):
            pass
        assert holder(path)["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    path = tmp_path / "x.lock"
    proc = _holder_process(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with exclusive(path, "next run"):
        assert holder(path)["pid"] == os.getpid()


def test_reentrant_in_one_process(tmp_path):
    path = tmp_path / "x.lock"
    with exclusive(path, "run"), exclusive(path, "deploy"):
        assert holder(path)["what"] == "run"
    with exclusive(path, "again"):
        pass


def test_failpoints_are_inert_unless_named(monkeypatch):
    monkeypatch.delenv(failpoints.ENV, raising=False)
    failpoints.hit("release.before_commit")  # no effect
    code = "from cryptocast import failpoints; failpoints.hit('x'); print('alive')"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ | {failpoints.ENV: "x"},
    )
    assert out.returncode == -signal.SIGKILL
    assert "alive" not in out.stdout


def test_staging_dirs_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    final = tmp_path / "hour_models"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".hour_models.staging-{dead.pid}-abcd1234"
    leftover.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".hour_models.staging-{alive.pid}-ef567890"
        busy.mkdir()
        mine = staging_dir(final)
        assert not leftover.exists()
        assert busy.exists()  # another live process is still writing there
        assert mine.name == "bundle"
        assert mine.parent.name.startswith(f".hour_models.staging-{os.getpid()}-")
        staging_dir(final)
        assert mine.parent.exists()  # this process's own directory stays too
    finally:
        alive.kill()
        alive.wait()
