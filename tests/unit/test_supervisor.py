"""infra.supervisor: start, readiness, death with the log's tail, stop of the whole group,
stale pid records, and the keeper that starts a killed program again."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from infra import supervisor
from infra.supervisor import Process, ProcessError


def spec(tmp_path, code: str, **kw) -> Process:
    return Process(
        name="tiny",
        argv=[sys.executable, "-c", code],
        log=tmp_path / "logs" / "tiny.log",
        record=tmp_path / "run" / "tiny.pid",
        cwd=tmp_path,
        **kw,
    )


def wait_for(check, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def kept_alive_pid_writer(tmp_path: Path) -> tuple[Process, Path]:
    """A kept-alive program that appends its pid to a file at each start, and the file."""
    out = tmp_path / "pids"
    code = f"import os, time; open({str(out)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(60)"
    return spec(tmp_path, code, keep_alive=True), out


def test_start_writes_the_log_and_the_pid_record_then_stop_removes_it(tmp_path):
    marker = tmp_path / "ready"
    proc = spec(
        tmp_path,
        f"import time, pathlib; print('hello', flush=True); "
        f"pathlib.Path({str(marker)!r}).touch(); time.sleep(60)",
        ready=marker.exists,
    )
    pid = proc.start()
    try:
        assert supervisor.read_record(proc.record) == {"pid": pid}
        assert proc.wait_ready(10) < 10
        assert proc.pid == pid
        assert proc.alive()
        assert proc.status() == "healthy"
        assert "hello" in proc.log.read_text()
        assert os.getpgid(pid) == pid  # a process group of its own
    finally:
        assert proc.stop(timeout_s=5) == pid
    assert not proc.record.exists()
    assert not supervisor.alive(pid)
    assert proc.status() == "stopped"
    assert proc.stop() is None


def test_a_process_that_dies_while_starting_is_reported_at_once_with_its_log(tmp_path):
    proc = spec(tmp_path, "import sys; print('boom: no config', flush=True); sys.exit(3)")
    proc.log.parent.mkdir(parents=True)
    proc.log.write_text("an earlier start's last words\n")
    proc.start()
    t0 = time.monotonic()
    with pytest.raises(ProcessError) as failed:
        proc.wait_ready(60, ready=lambda: False, poll_s=0.02)
    assert time.monotonic() - t0 < 10  # not the 60 s timeout
    assert "tiny exited while starting" in str(failed.value)
    assert "boom: no config" in str(failed.value)
    assert "earlier" not in str(failed.value)  # this start's lines only


def test_a_process_that_never_gets_ready_times_out_saying_so(tmp_path):
    proc = spec(tmp_path, "import time; time.sleep(60)", mask=lambda t: t.replace("s3cr3t", "***"))
    proc.start()
    try:
        with pytest.raises(RuntimeError, match="did not become healthy within 0 s"):
            proc.wait_ready(0.2, ready=lambda: False, poll_s=0.02, error=RuntimeError)
    finally:
        proc.stop(timeout_s=5)


def test_stop_kills_the_whole_group_and_sigkills_what_ignores_sigterm(tmp_path):
    child = tmp_path / "child.pid"
    code = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        f"open({str(child)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    proc = spec(tmp_path, code)
    pid = proc.start()
    wait_for(lambda: child.exists() and child.read_text())
    grandchild = int(child.read_text())
    t0 = time.monotonic()
    assert proc.stop(timeout_s=0.5) == pid
    assert time.monotonic() - t0 < 5
    assert not supervisor.alive(pid)
    assert not supervisor.alive(grandchild)


def test_a_stale_pid_record_is_not_running_and_is_removed(tmp_path):
    proc = spec(tmp_path, "pass")
    gone = spec(tmp_path, "pass").start()
    wait_for(lambda: not supervisor.alive(gone))
    proc.record.write_text(f"{gone}\n")  # the plain format of older records reads too
    assert supervisor.read_record(proc.record) == {"pid": gone}
    assert proc.pid is None
    assert proc.status() == "stopped"
    assert not proc.record.exists()


def test_pid_records_are_written_atomically_with_extra_fields(tmp_path):
    path = tmp_path / "run" / "x.json"
    supervisor.write_record(path, 123, url="http://127.0.0.1:1", token="t")
    assert supervisor.read_record(path) == {"pid": 123, "url": "http://127.0.0.1:1", "token": "t"}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary left


def test_a_kept_alive_program_killed_is_started_again(tmp_path):
    proc, out = kept_alive_pid_writer(tmp_path)
    keeper = proc.start()
    try:
        wait_for(lambda: out.exists() and len(out.read_text().split()) == 1)
        first = int(out.read_text().split()[0])
        assert supervisor.children(keeper) == [first]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(out.read_text().split()) == 2)
        assert proc.pid == keeper  # the record still names the keeper
        assert "restarting it" in proc.log.read_text()
    finally:
        assert proc.stop(timeout_s=5) == keeper
    second = int(out.read_text().split()[1])
    assert not supervisor.alive(second)
    assert not supervisor.alive(keeper)


def test_a_killed_keeper_takes_its_program_with_it(tmp_path):
    """SIGKILL of the pid the record names (the keeper) ended it but left the front door
    answering, unnamed by any record, while `status` said it was not running."""
    proc, out = kept_alive_pid_writer(tmp_path)
    keeper = proc.start()
    try:
        wait_for(lambda: out.exists() and len(out.read_text().split()) == 1)
        program = int(out.read_text().split()[0])
        os.kill(keeper, signal.SIGKILL)
        wait_for(lambda: not supervisor.alive(program), timeout_s=5)
    finally:
        proc.stop(timeout_s=5)
    assert not supervisor.alive(keeper)


def test_a_kept_alive_program_that_fails_at_start_is_not_restarted(tmp_path):
    code = "import sys; print('bad settings', flush=True); sys.exit(2)"
    proc = spec(tmp_path, code, keep_alive=True)
    proc.start()
    with pytest.raises(ProcessError, match="bad settings"):
        proc.wait_ready(30, ready=lambda: False, poll_s=0.02)
    assert proc.started.returncode == 2
    assert "restarting" not in proc.log.read_text()


def test_a_crash_loop_is_given_up(tmp_path, monkeypatch):
    """A program that crashes (fails after START_S) is restarted, MAX_RESTARTS times in a
    window at most; then the keeper exits with its status."""
    runs = tmp_path / "runs"
    monkeypatch.setattr(supervisor, "START_S", 0.0)
    monkeypatch.setattr(supervisor, "MAX_RESTARTS", 2)
    monkeypatch.setattr(supervisor, "RESTART_DELAY_S", 0.0)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = f"import sys; open({str(runs)!r}, 'a').write('x'); sys.exit(4)"
        assert supervisor.keep([sys.executable, "-c", code]) == 4
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert runs.read_text() == "xxx"  # the first run and two restarts
