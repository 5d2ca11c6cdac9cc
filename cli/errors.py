"""How the command line ends on an error: a message, not a traceback.

A :class:`cryptocast.errors.UserError` prints its message (exit 2); anything else prints
one line naming the file its traceback went to (exit 1). Tracebacks are printed only with
``--debug`` / ``CRYPTOCAST_DEBUG=1``, and are always appended to ``logs/errors.log``.
ZenML logs a failed step's traceback itself; :func:`quiet_zenml` sends that one to the
same file (none for a user error: the file holds real errors only).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import traceback
from pathlib import Path

import click

from cryptocast.errors import UserError, debug
from cryptocast.paths import LOGS_DIR

ERROR_LOG = LOGS_DIR / "errors.log"
USER_EXIT, BUG_EXIT = 2, 1
# ZenML's loggers that log a failed step's traceback (the step's message is logged too)
STEP_FAILURE_LOGGERS = ("zenml.orchestrators.local.local_orchestrator",)
# ZenML's loggers that print advice on every run, and how those lines begin
HINT_LOGGERS = ("zenml.pipelines.pipeline_definition",)
ZENML_HINTS = ("You can visualize your pipeline runs in the `ZenML Dashboard`",)


class Refused(UserError, click.ClickException):
    """A command refused for a state the user can change (no champion yet, no such
    version, a busy granularity, ...): ``error: <message>``, exit 2, like every other
    user error (click's own ``Error:`` and exit 1 are for failures)."""

    exit_code = USER_EXIT

    def show(self, file=None) -> None:
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


def exit_status(exc: BaseException) -> int:
    """The exit status a command ends with on ``exc``."""
    return USER_EXIT if isinstance(exc, UserError) else BUG_EXIT


KEPT = "_cryptocast_traceback_kept"  # set on an exception whose traceback is in ERROR_LOG


def keep_traceback(text: str) -> Path:
    """Append ``text`` with the time and command line to :data:`ERROR_LOG`."""
    ERROR_LOG.parent.mkdir(parents=True, exist_ok=True)
    with ERROR_LOG.open("a", encoding="utf-8") as fh:
        fh.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} {' '.join(sys.argv)}\n{text}\n")
    return ERROR_LOG


class _TracebackToFile(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not debug():
            exc = record.exc_info[1]
            if not isinstance(exc, UserError) and not getattr(exc, KEPT, False):
                keep_traceback("".join(traceback.format_exception(*record.exc_info)))
                with contextlib.suppress(AttributeError):  # kept once, not again at the exit
                    setattr(exc, KEPT, True)
            record.exc_info, record.exc_text = None, None
        return True


class _NoHints(logging.Filter):
    """Drops ZenML's advice printed on every run (``zenml login --local`` for a dashboard
    this project starts with ``make dashboard``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ZENML_HINTS)


def quiet_zenml() -> None:
    """Keep ZenML's traceback of a failed step in the error log, not on the screen, and
    leave out its per-run hints."""
    for name in STEP_FAILURE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TracebackToFile) for f in logger.filters):
            logger.addFilter(_TracebackToFile())
    for name in HINT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoHints) for f in logger.filters):
            logger.addFilter(_NoHints())


def report(exc: BaseException) -> int:
    """Print ``exc`` as a user sees it; the exit status to end with."""
    if isinstance(exc, UserError):  # not a bug: no traceback to keep
        click.secho(f"error: {exc}", fg="red", err=True)
        return USER_EXIT
    path = keep_traceback(traceback.format_exc())
    click.secho(
        f"error: {type(exc).__name__}: {exc}\n(unexpected: the traceback is in {path}; "
        "run again with --debug or CRYPTOCAST_DEBUG=1 to print it)",
        fg="red",
        err=True,
    )
    return BUG_EXIT
