"""The ``cryptocast`` command (``[project.scripts]``; the Makefile calls it).

One module per command group; each command parses, calls ``cryptocast`` / ``infra`` /
``pipelines`` and prints, nothing more. ``cryptocast --help`` lists them.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from cli import dashboards, delivery, errors, monitoring, ops, train
from cryptocast.errors import DEBUG_ENV, debug
from cryptocast.paths import METRICS_DIR_ENV, ZENML_HOME, metrics_dir


@click.group()
@click.option(
    "--debug",
    "debug_flag",
    is_flag=True,
    help=f"Print tracebacks (also {DEBUG_ENV}=1); they always go to logs/errors.log.",
)
def cli(debug_flag: bool) -> None:
    """cryptocast: train, serve, monitor and inspect crypto forecasters."""
    if debug_flag:
        os.environ[DEBUG_ENV] = "1"  # the processes this one starts inherit it
    errors.quiet_step_tracebacks()
    # before any command imports ZenML: the project's ZenML home (as make sets it), never
    # ~/.config/zenml, and no analytics; the served models inherit the metrics directory
    os.environ.setdefault("ZENML_CONFIG_PATH", str(ZENML_HOME))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")
    os.environ.setdefault(METRICS_DIR_ENV, str(metrics_dir()))
    # a run's output reads like the README's: steps, decisions, where to look
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.getLogger("cryptocast").setLevel(logging.INFO)


for group in (train, delivery, monitoring, dashboards, ops):
    for command in group.COMMANDS:
        cli.add_command(command)


def main() -> None:
    try:
        cli()
    except Exception as exc:
        if debug():
            errors.keep_traceback(traceback.format_exc())
            raise
        sys.exit(errors.report(exc))
