"""The one process supervisor of the production stack, the front door and the model servers.

A :class:`Process` is a spec (name, argv, env, cwd, log file, pid record, readiness and
health probes); :meth:`Process.start` runs it detached in a process group of its own
(it outlives the command that started it), its output appended to its log file, its pid
written atomically to its pid record. :meth:`Process.wait_ready` polls the readiness
probe and fails fast, with the end of the log, when the process dies first;
:meth:`Process.stop` SIGTERMs the group, SIGKILLs what is left after a timeout and removes
the record. A pid record whose process is gone is stale: reading it removes it.

``keep_alive`` puts a keeper between the record and the program (``python -m
infra.supervisor``, standard library only): it restarts the program when it dies
(killed by a signal, or failing after ``START_S``), so a killed front door answers again
with nobody acting. A program that fails at start is not restarted (nor one in a crash
loop): the keeper exits with its status and :meth:`Process.wait_ready` reports the log.

Our own rather than supervisord or circus: those run a daemon of their own that would
itself need starting and watching, per checkout, and neither can own the model servers,
which ZenML's deployer daemonizes itself (here only their log tail and readiness wait).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptocast.locks import pid_alive

START_S = 30.0  # a kept-alive program that fails sooner than this failed to start
RESTART_DELAY_S = 0.2
MAX_RESTARTS, RESTART_WINDOW_S = 5, 60.0  # more restarts than this: a crash loop, given up


class ProcessError(RuntimeError):
    """A process died while starting, or did not become ready in time."""


# ------------------------------------------------------------------ pids and groups


def alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    if not pid_alive(pid):
        return False
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # ours: reap it
            return False
    return True


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` other than a zombie runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    return False


def kill_group(pid: int, timeout_s: float = 30) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL what is left after ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not group_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(100):
        if not group_alive(pid):
            return
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


# ------------------------------------------------------------------ pid records


def write_record(path: Path, pid: int, **extra: Any) -> None:
    """Write the pid record ``path`` atomically: ``{"pid": pid, ...extra}`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": pid, **extra}))
    os.replace(tmp, path)


def read_record(path: Path) -> dict[str, Any] | None:
    """The pid record at ``path`` (a bare pid is read as ``{"pid": ...}``), or None."""
    try:
        text = path.read_text()
    except OSError:
        return None
    with contextlib.suppress(ValueError, IndexError):
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("pid"), int):
            return data
        return {"pid": int(text.split()[0])}
    return None


def live_pid(path: Path) -> int | None:
    """The pid of the record at ``path`` if its process is alive; a stale record is removed."""
    record = read_record(path)
    if record is None:
        return None
    if alive(record["pid"]):
        return record["pid"]
    path.unlink(missing_ok=True)
    return None


# ------------------------------------------------------------------ logs and waiting


def log_tail(path: Path | str | None, lines: int = 5, start: int = 0) -> list[str]:
    """The last ``lines`` lines of the log at ``path`` from byte ``start`` on."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.strip().splitlines()[-lines:]]


def wait_until(
    ready: Callable[[], bool],
    running: Callable[[], bool],
    *,
    timeout_s: float,
    poll_s: float = 0.1,
    died: Callable[[], str] = lambda: "exited while starting",
    late: Callable[[float], str] | None = None,
    error: type[Exception] = ProcessError,
) -> float:
    """Poll ``ready`` (an exception counts as not ready) until it holds; raise ``error``
    at once when ``running`` turns false, or after ``timeout_s``. Seconds waited."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if ready():
                return time.monotonic() - start
        if not running():
            raise error(died())
        waited = time.monotonic() - start
        if waited >= timeout_s:
            raise error(late(timeout_s) if late else f"not ready within {timeout_s:.0f} s")
        time.sleep(poll_s)


# ------------------------------------------------------------------ the spec


@dataclass
class Process:
    """A supervised background process."""

    name: str
    argv: list[str]
    log: Path
    record: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ready: Callable[[], bool] | None = None
    health: Callable[[], bool] | None = None
    keep_alive: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # kept in the pid record
    mask: Callable[[str], str] = lambda text: text  # hides secrets in error messages
    started: subprocess.Popen | None = field(default=None, init=False, repr=False)
    log_start: int = field(default=0, init=False)

    @property
    def pid(self) -> int | None:
        """The pid of the running process (its group's), None if it is not running."""
        return live_pid(self.record)

    def alive(self) -> bool:
        return self.pid is not None

    def healthy(self) -> bool:
        if self.pid is None:
            return False
        try:
            return bool((self.health or self.ready or (lambda: True))())
        except Exception:
            return False

    def status(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy() else "running, not healthy"

    def start(self) -> int:
        """Start the process in a new session, output appended to its log; record its pid."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        argv = list(self.argv)
        if self.keep_alive:
            argv = [sys.executable, "-m", "infra.supervisor", "--", *argv]
        with open(self.log, "ab") as out:
            self.log_start = out.tell()  # the log keeps earlier starts
            self.started = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else dict(self.env),
                cwd=self.cwd,
                start_new_session=True,
            )
        write_record(self.record, self.started.pid, **self.extra)
        return self.started.pid

    def _running(self, pid: int) -> bool:
        if self.started is not None and self.started.pid == pid:
            return self.started.poll() is None
        return alive(pid)

    def tail(self, lines: int = 5) -> str:
        start = self.log_start if self.started is not None else 0
        return self.mask(" | ".join(log_tail(self.log, lines, start)))

    def wait_ready(
        self,
        timeout_s: float,
        *,
        what: str | None = None,
        poll_s: float = 0.1,
        error: type[Exception] = ProcessError,
        ready: Callable[[], bool] | None = None,
    ) -> float:
        """Wait until the readiness probe (``ready`` or the spec's) holds; fail fast, with
        the log's tail, when the process dies. Seconds waited."""
        what = what or self.name
        pid = self.started.pid if self.started is not None else self.pid
        probe = ready or self.ready or (lambda: True)
        return wait_until(
            probe,
            lambda: pid is not None and self._running(pid),
            timeout_s=timeout_s,
            poll_s=poll_s,
            died=lambda: f"{what} exited while starting (log: {self.log}): {self.tail()}",
            late=lambda t: (
                f"{what} did not become healthy within {t:.0f} s (log: {self.log}): {self.tail()}"
            ),
            error=error,
        )

    def stop(self, timeout_s: float = 30) -> int | None:
        """Stop the process group (also what is left of it when its leader was killed:
        no orphans); remove the pid record. The pid stopped, or None."""
        record = read_record(self.record)
        pid = record["pid"] if record else None
        if pid is None or not (alive(pid) or group_alive(pid)):
            self.record.unlink(missing_ok=True)
            return None
        kill_group(pid, timeout_s)
        if self.started is not None and self.started.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.started.wait(timeout=5)
        self.record.unlink(missing_ok=True)
        return pid

    def restart(self, timeout_s: float = 30) -> int:
        self.stop(timeout_s)
        return self.start()


# ------------------------------------------------------------------ the keeper


def _dies_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` after which the program gets SIGTERM when ``parent`` (the keeper)
    dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``): a killed keeper leaves no program
    running that its pid record no longer names."""

    def arm() -> None:
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the keeper died before the signal was armed
            os._exit(1)

    return arm


def keep(argv: list[str]) -> int:
    """Run ``argv`` and run it again whenever it dies: killed by a signal, or failing after
    ``START_S`` (a crash, not a failed start); not when it fails sooner or exits 0 (the
    keeper exits with its status), nor more than ``MAX_RESTARTS`` times in
    ``RESTART_WINDOW_S``. SIGTERM/SIGINT stop it and the program."""
    stopping: list[int] = []
    restarts: list[float] = []
    child: subprocess.Popen | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        began = time.monotonic()
        child = subprocess.Popen(argv, preexec_fn=_dies_with(os.getpid()))
        code = child.wait()
        now = time.monotonic()
        if stopping:
            return 0
        crashed = code < 0 or (code > 0 and now - began >= START_S)
        restarts = [t for t in restarts if now - t < RESTART_WINDOW_S]
        if not crashed or len(restarts) >= MAX_RESTARTS:
            return code if code >= 0 else 128 - code
        restarts.append(now)
        print(f"supervisor: {argv[0]} exited ({code}); restarting it", flush=True)
        time.sleep(RESTART_DELAY_S)


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(keep(args[1:] if args[:1] == ["--"] else args))
