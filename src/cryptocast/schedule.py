"""Periodic runs as cron entries (`make schedule` / `make unschedule`).

ZenML's local orchestrator does not run schedules, so the periodic runs are plain cron
lines that call the Makefile. Each line ends with a marker naming this checkout and the
granularity, so installing again replaces our lines and removing touches nothing else.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from cryptocast.errors import UserError

CRONTAB_ENV = "CRYPTOCAST_CRONTAB"


class CrontabError(UserError, RuntimeError):
    """``crontab`` is missing or refused a change."""


def marker(root: Path, granularity: str) -> str:
    """The comment that ends each cron line of this checkout and ``granularity``: how install and
    remove find their own lines among a user's others."""
    return f"# cryptocast {granularity} {root}"


def make_variables(source: str | None, data_dir: str | None, pairs: list[str] | None) -> str:
    """``DATA=... DATA_DIR=... PAIRS=...`` for a cron line, each value quoted for the
    shell (a folder with a space in it stays one value)."""
    values = {"DATA": source, "DATA_DIR": data_dir, "PAIRS": " ".join(pairs or []) or None}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items() if v)


def cron_lines(
    root: Path,
    granularity: str,
    *,
    monitor: str,
    retrain: str,
    make: str = "make",
    options: str = "",
) -> list[str]:
    """The two cron lines of a granularity: the monitor (which retrains when it must) and
    a regular training run. Output is appended to ``logs/<target>-<granularity>.log``."""
    tag = marker(root, granularity)
    lines = []
    for when, target in ((monitor, "monitor"), (retrain, "train")):
        if len(when.split()) != 5:
            raise ValueError(f"not a 5-field cron schedule: {when!r} (for {target})")
        log = f"logs/{target}-{granularity}.log"
        cmd = f"{shlex.quote(make)} {target} GRAN={granularity} {options}".rstrip()
        lines.append(f"{when} cd {shlex.quote(str(root))} && {cmd} >> {log} 2>&1 {tag}")
    return lines


def ours(crontab: str, tag: str) -> list[str]:
    """The lines of ``crontab`` that end with ``tag``."""
    return [line for line in crontab.splitlines() if line.rstrip().endswith(tag)]


def without(crontab: str, tag: str) -> str:
    """``crontab`` minus :func:`ours`."""
    mine = set(ours(crontab, tag))
    return "".join(f"{line}\n" for line in crontab.splitlines() if line not in mine)


def with_lines(crontab: str, tag: str, lines: list[str]) -> str:
    """``crontab`` with our lines for ``tag`` replaced by ``lines``."""
    return without(crontab, tag) + "".join(f"{line}\n" for line in lines)


def crontab(*args: str, stdin: str | None = None) -> str:
    """Run ``crontab`` (``$CRYPTOCAST_CRONTAB`` if set); ``crontab -l`` without a crontab
    is an empty one."""
    exe = os.environ.get(CRONTAB_ENV) or shutil.which("crontab")
    if not exe:
        raise CrontabError("crontab not found: install cron (Debian/Ubuntu: apt-get install cron)")
    proc = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        if args == ("-l",) and "no crontab" in proc.stderr:
            return ""
        raise CrontabError(f"crontab {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def install(tag: str, lines: list[str]) -> None:
    """Replace our lines for ``tag`` in the user's crontab by ``lines``."""
    crontab("-", stdin=with_lines(crontab("-l"), tag, lines))


def uninstall(tag: str) -> list[str]:
    """Remove our lines for ``tag`` from the user's crontab; return them."""
    before = crontab("-l")
    crontab("-", stdin=without(before, tag))
    return ours(before, tag)
