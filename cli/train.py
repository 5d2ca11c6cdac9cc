"""``cryptocast train``: the training pipeline of one granularity."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import NoReturn

import click

from cli.common import data_options, data_overrides, granularity_lock, load_for_run, settings
from cryptocast.errors import UserError, debug


def failed(exc: BaseException, t0: float) -> NoReturn:
    """End a training run that failed (not a user's error): one loud line naming the
    error log that holds its traceback (printed with --debug), exit 1."""
    if debug():
        raise exc  # cli.main keeps it in the error log
    from cli.errors import ERROR_LOG, KEPT, keep_traceback

    if not getattr(exc, KEPT, False):  # a failed step's was kept when ZenML logged it
        keep_traceback("".join(traceback.format_exception(exc)))
    click.secho(
        f"\ntraining pipeline FAILED after {time.perf_counter() - t0:.1f}s: "
        f"{type(exc).__name__}: {exc}\n(unexpected: the traceback is in {ERROR_LOG}; run "
        "again with --debug or CRYPTOCAST_DEBUG=1 to print it)",
        fg="red",
        err=True,
    )
    sys.exit(1)


@click.command()
@data_options
@click.option("--config", default=None, help="Run configuration (default configs/<gran>.yaml).")
@click.option("--until", default=None, help="Train as of this UTC time (drop later candles).")
@click.option(
    "--require-learned",
    is_flag=True,
    help="Quality gate: REJECT (exit 3) a run in which no learned model beats the random "
    "walk, instead of serving the calibrated random walk (gates.require_learned).",
)
@click.option(
    "--promote-backfill",
    is_flag=True,
    help="Let this backfill (--until) run replace the champion if it earns it "
    "(a person's decision, recorded on the version).",
)
def train(
    gran: str,
    source: str | None,
    data_dir: str | None,
    pairs: str | None,
    config: str | None,
    until: str | None,
    promote_backfill: bool,
    require_learned: bool,
) -> None:
    """Run load -> validate -> train -> evaluate -> deploy for one granularity."""
    if promote_backfill and not until:
        raise click.UsageError("--promote-backfill only applies to a backfill run (--until)")
    overrides = data_overrides(
        source,
        data_dir,
        pairs,
        until=until,
        promote_backfill=promote_backfill,
        require_learned=require_learned,
    )
    run = load_for_run(gran, config, overrides)
    cfg = run.settings
    from infra import retrain, runs
    from infra.stack import ensure_stack
    from pipelines.training import run_training

    t0, started_ms, started = time.perf_counter(), int(time.time() * 1000), False
    runs.stop_on_signals()
    try:
        with granularity_lock(cfg, "training run"):
            for line in ensure_stack():  # `make setup`, in-process (no-op when set up)
                click.echo(f"setup: {line}")
            for name in runs.fail_orphans(cfg, "killed: its process was gone"):
                click.secho(f"marked failed: {name} (its process had been killed)", fg="yellow")
            for name in runs.retire_orphan_servers(cfg):
                click.secho(f"stopped the model server of {name}: a killed release left it, "
                            "never registered", fg="yellow")  # fmt: skip
            started = True
            try:
                run_training(run)
            except BaseException:
                if (signal := runs.stopped_by()) is None:
                    raise
                marked = runs.fail_orphans(cfg, f"stopped by {signal}")
                marked += [f"model server of {s}" for s in runs.retire_orphan_servers(cfg)]
                click.secho(
                    f"\ntraining pipeline ({gran}) STOPPED by {signal} after "
                    f"{time.perf_counter() - t0:.1f}s; marked failed: {', '.join(marked) or 'none'}"
                    ". A release is all or nothing: `make status` shows what is served.",
                    fg="red",
                    err=True,
                )
                sys.exit(130)
    except (click.ClickException, UserError) as exc:
        # bad data, a bad setting, before or in the pipeline: cli.main prints `error: ...`
        # as the last line and exits 2; a model server that cannot start is a failed run
        from cryptocast.serving.client import ServingError

        if isinstance(exc, ServingError):
            failed(exc, t0)
        if started:
            click.secho(
                f"\ntraining pipeline ({gran}) stopped after {time.perf_counter() - t0:.1f}s; "
                "nothing was deployed and what users see is unchanged",
                fg="yellow",
                err=True,
            )
        raise
    except Exception as exc:  # the step already logged details; make the exit loud
        failed(exc, t0)
    if cfg.gates.require_learned and retrain.rejected_since(cfg, started_ms):
        click.secho(
            f"training pipeline ({gran}) REJECTED after {time.perf_counter() - t0:.1f}s: no "
            "learned model beats the random walk and gates.require_learned asks for one "
            "(decision above); nothing was deployed and what users see is unchanged",
            fg="yellow",
            err=True,
        )
        sys.exit(retrain.REJECTED_EXIT)
    click.secho(
        f"training pipeline ({gran}) finished in {time.perf_counter() - t0:.1f}s", fg="green"
    )
    from infra import frontdoor

    if (state := frontdoor.status(cfg)) is not None:
        url = state["url"]
        click.echo(f"forecasts of the champion: {url}/forecast (API docs: {url}/docs)")


@click.command()
@data_options
@click.option("--config", default=None, help="Run configuration (default configs/<gran>.yaml).")
@click.option("--out", default=None, help="Markdown file (default reports/accuracy-<gran>.md).")
def report(
    gran: str,
    source: str | None,
    data_dir: str | None,
    pairs: str | None,
    config: str | None,
    out: str | None,
) -> None:
    """Backtest every candidate and write the accuracy report (nothing is promoted)."""
    from cryptocast.modeling.reports import write_accuracy_report
    from cryptocast.paths import REPO_ROOT

    cfg = settings(gran, config, data_overrides(source, data_dir, pairs))
    path = Path(out) if out else REPO_ROOT / "reports" / f"accuracy-{gran}.md"
    words = [f"make report GRAN={gran}"]
    words += [f"DATA={source}"] if source else []
    words += [f"DATA_DIR={data_dir}"] if data_dir else []
    words += [f'PAIRS="{pairs}"'] if pairs else []
    t0 = time.perf_counter()
    click.echo(f"report: training and backtesting every candidate of {gran} ...")
    write_accuracy_report(cfg, path, " ".join(words))
    click.echo(f"report: {path} ({time.perf_counter() - t0:.0f}s)")


COMMANDS = (train, report)
