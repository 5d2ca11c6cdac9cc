"""Operations: the ZenML stack, and periodic runs in cron."""

from __future__ import annotations

import getpass
import shutil

import click

from cli.common import data_options, data_overrides, gran_option, settings
from cryptocast import schedule as cron
from cryptocast.paths import LOGS_DIR, REPO_ROOT


@click.command()
def setup() -> None:
    """Initialise ZenML and register/activate the cryptocast stack (idempotent)."""
    from infra.stack import ensure_stack

    done = ensure_stack()
    click.echo(
        "\n".join(done) if done else "ZenML stack 'cryptocast' already set up; nothing to do"
    )


@click.command()
@data_options
def schedule(gran: str, source: str | None, data_dir: str | None, pairs: str | None) -> None:
    """Install the cron entries of GRAN (monitor + regular training); print them."""
    data = data_overrides(source, data_dir, pairs)
    options = cron.make_variables(data["source"], data["data_dir"], data["pairs"])
    m = settings(gran).monitoring
    lines = cron.cron_lines(
        REPO_ROOT,
        gran,
        monitor=m.schedule,
        retrain=m.retrain_schedule,
        make=shutil.which("make") or "make",
        options=options,
    )
    LOGS_DIR.mkdir(exist_ok=True)
    try:
        cron.install(cron.marker(REPO_ROOT, gran), lines)
    except cron.CrontabError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"installed in the crontab of {getpass.getuser()}:")
    click.echo("\n".join(f"  {line}" for line in lines))
    click.echo(f"logs: {LOGS_DIR}; remove with `make unschedule GRAN={gran}`")


@click.command()
@gran_option
def unschedule(gran: str) -> None:
    """Remove the cron entries `schedule` installed for GRAN (and nothing else)."""
    try:
        removed = cron.uninstall(cron.marker(REPO_ROOT, gran))
    except cron.CrontabError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        "removed:\n" + "\n".join(f"  {line}" for line in removed)
        if removed
        else f"no cryptocast {gran} entries in the crontab; nothing to do"
    )


COMMANDS = (setup, schedule, unschedule)
