"""``cryptocast train``: the training pipeline of one granularity."""

from __future__ import annotations

import sys
import time

import click

from cli.common import data_options, data_overrides, granularity_lock, settings
from cryptocast.paths import granularity_config


@click.command()
@data_options
@click.option("--config", default=None, help="Run configuration (default configs/<gran>.yaml).")
@click.option("--until", default=None, help="Train as of this UTC time (drop later candles).")
def train(
    gran: str,
    source: str | None,
    data_dir: str | None,
    pairs: str | None,
    config: str | None,
    until: str | None,
) -> None:
    """Run load -> validate -> train -> evaluate -> deploy for one granularity."""
    overrides = data_overrides(source, data_dir, pairs) | {"until": until}
    cfg = settings(gran, config, **overrides)  # fail fast on a bad override, before ZenML
    from infra.stack import ensure_stack
    from pipelines.training import run_training

    t0 = time.perf_counter()
    try:
        with granularity_lock(cfg, "training run"):
            for line in ensure_stack():  # `make setup`, in-process (no-op when set up)
                click.echo(f"setup: {line}")
            run_training(granularity_config(gran, config), **overrides)
    except click.ClickException:
        raise
    except Exception as exc:  # the step already logged details; make the exit loud
        click.secho(
            f"\ntraining pipeline ({gran}) FAILED after {time.perf_counter() - t0:.1f}s: {exc}"
            "\n(the failing step's report is printed above)",
            fg="red",
            err=True,
        )
        sys.exit(1)
    click.secho(
        f"training pipeline ({gran}) finished in {time.perf_counter() - t0:.1f}s", fg="green"
    )
    from infra import frontdoor

    if (state := frontdoor.status(cfg)) is not None:
        url = state["url"]
        click.echo(f"forecasts of the champion: {url}/forecast (API docs: {url}/docs)")


COMMANDS = (train,)
