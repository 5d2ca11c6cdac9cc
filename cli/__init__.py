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

from cli import dashboards, delivery, errors, k8s, monitoring, ops, train
from cryptocast.errors import DEBUG_ENV, debug
from cryptocast.paths import METRICS_DIR_ENV, ZENML_HOME, metrics_dir

EMPTY_IS_UNSET = ("ZENML_STORE_", "MLFLOW_TRACKING_", "S3_ENDPOINT_URL", "AWS_")


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
    errors.quiet_zenml()
    # an empty variable counts as unset: CI passes a secret that is not set as "" (the
    # workflow trains on the remote stack only when ZENML_STORE_API_KEY is set), and ZenML
    # would take an empty ZENML_STORE_URL for a store URL
    for name in [k for k, v in os.environ.items() if k.startswith(EMPTY_IS_UNSET) and not v]:
        del os.environ[name]
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


for group in (train, delivery, monitoring, dashboards, ops, k8s):
    for command in group.COMMANDS:
        cli.add_command(command)


def main() -> None:
    try:
        cli()
    except Exception as exc:
        if debug():
            errors.keep_traceback(traceback.format_exc())
            traceback.print_exc()
            sys.exit(errors.exit_status(exc))  # the same status as without --debug
        sys.exit(errors.report(exc))
