"""One run per granularity at a time: an advisory file lock with a readable holder.

The kernel releases the lock when the holding process dies (even ``kill -9``), so a crash
never leaves a stale lock. Re-acquiring a lock this process already holds is a no-op, so
the CLI can hold it for the whole run while the deploy step takes it again.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptocast.errors import UserError

_HELD: dict[str, int] = {}


class Busy(UserError, RuntimeError):
    """Another process holds the lock."""


def holder(path: Path) -> dict | None:
    """What the lock file at ``path`` says about its holder (pid, what, started, command), or None
    when it cannot be read. Named in :class:`Busy`'s message."""
    try:
        return json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at ``path`` or raise :class:`Busy` at once, naming the holder."""
    path = Path(path).resolve()
    key = str(path)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        info = holder(path) or {}
        # the holder's own label: a status check refused by a training run names the run
        raise Busy(
            f"another {info.get('what', what)} is in progress (pid {info.get('pid', '?')}, "
            f"started {info.get('started', '?')}: {info.get('command', '?')}). Wait for it "
            f"to finish. Lock: {path}"
        ) from None
    os.ftruncate(fd, 0)
    os.write(
        fd,
        json.dumps(
            {
                "pid": os.getpid(),
                "what": what,
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "command": " ".join(sys.argv)[:300],
            }
        ).encode(),
    )
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_path(models_dir: Path) -> Path:
    """The lock of one granularity, beside its models directory."""
    models_dir = Path(models_dir)
    return models_dir.with_name(f".{models_dir.name}.lock")


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
