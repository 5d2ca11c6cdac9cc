"""Periodic runs as cron entries (`make schedule` / `make unschedule`).

ZenML's local orchestrator does not run schedules, so the periodic runs are plain cron
lines that call the Makefile. Each line ends with a marker naming this checkout and the
granularity, so installing again replaces our lines and removing touches nothing else.
"""

from __future__ import annotations

import shlex
from pathlib import Path


def marker(root: Path, granularity: str) -> str:
    return f"# cryptocast {granularity} {root}"


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
