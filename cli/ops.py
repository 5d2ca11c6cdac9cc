"""Operations: the ZenML stack, and periodic runs in cron."""

from __future__ import annotations

import getpass
import os
import shutil
import time

import click

from cli.common import data_options, data_overrides, gran_option, settings
from cli.errors import Refused
from cryptocast import schedule as cron
from cryptocast.paths import LOGS_DIR, REPO_ROOT


@click.command()
@click.option(
    "--stack",
    "kind",
    type=click.Choice(["local", "remote", "kubernetes"]),
    default="local",
    show_default=True,
    help="local: the embedded stores in the ZenML home; remote: the ZenML server of "
    "`stack-up` (or ZENML_STORE_URL ... for your own servers); kubernetes: the stack of "
    "configs/stacks/kubernetes.yaml, registered on the server this home is connected to.",
)
def setup(kind: str) -> None:
    """Initialise ZenML and register/activate the cryptocast stack (idempotent)."""
    if kind == "kubernetes":
        from infra import k8s

        click.echo("\n".join(k8s.register(k8s.load_stack())) or "nothing to do")
        return
    if kind == "remote":
        from infra.remotestack import (
            Layout,
            remote_settings_from_env,
            remote_settings_from_stack,
        )
        from infra.stack import REMOTE_STACK, ensure_remote_stack

        remote = remote_settings_from_env(os.environ) or remote_settings_from_stack(
            Layout.from_env(os.environ, REPO_ROOT), os.environ
        )
        done = ensure_remote_stack(remote)
        click.echo(
            "\n".join(done)
            if done
            else f"ZenML stack '{REMOTE_STACK}' already set up on "
            f"{remote.endpoints.zenml_url}; nothing to do"
        )
        return
    from infra.stack import ensure_stack, use_local_store

    done = use_local_store() + ensure_stack()
    click.echo(
        "\n".join(done) if done else "ZenML stack 'cryptocast' already set up; nothing to do"
    )


@click.command("stack-up")
def stack_up() -> None:
    """Start the production stack on 127.0.0.1 (MariaDB, PostgreSQL, SeaweedFS S3,
    MLflow server, ZenML server); what already runs is left alone."""
    from infra import prodstack
    from infra.remotestack import Endpoints

    t0 = time.monotonic()
    done = prodstack.up(click.echo)
    layout, ports = prodstack.stack_from_env()
    if all(v == "already running" for v in done.values()):
        click.echo(f"the stack is already up ({layout.root}); nothing to do")
    else:
        click.echo(f"stack up in {time.monotonic() - t0:.1f} s")
    e = Endpoints.local(ports)
    click.echo(f"  ZenML server   {e.zenml_url}  (database: MariaDB 127.0.0.1:{ports.mariadb})")
    click.echo(f"  MLflow server  {e.mlflow_url}  (backend: PostgreSQL 127.0.0.1:{ports.postgres})")
    click.echo(f"  S3 (SeaweedFS) {e.s3_endpoint}  buckets {e.zenml_bucket}, {e.mlflow_bucket}")
    click.echo(f"  credentials    {layout.credentials} (mode 0600); logs {layout.logs}")
    click.echo("next: make setup STACK=remote")


@click.command("stack-down")
def stack_down() -> None:
    """Stop every process of the production stack (data and credentials stay)."""
    from infra import prodstack

    stopped = prodstack.down(click.echo)
    layout, _ = prodstack.stack_from_env()
    click.echo(
        f"stack stopped; data kept in {layout.root}"
        if stopped
        else "the stack is not running; nothing to do"
    )


@click.command("stack-status")
def stack_status() -> None:
    """Each service of the production stack: healthy, running but not healthy, stopped."""
    from infra import prodstack

    for name, state in prodstack.status().items():
        click.echo(f"  {name:<10} {state}")


@click.command()
@data_options
def schedule(gran: str, source: str | None, data_dir: str | None, pairs: str | None) -> None:
    """Install the cron entries of GRAN (monitor + regular training); print them."""
    data = data_overrides(source, data_dir, pairs)
    options = cron.make_variables(data.source, data.data_dir, data.pairs)
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
        raise Refused(str(exc)) from exc
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
        raise Refused(str(exc)) from exc
    click.echo(
        "removed:\n" + "\n".join(f"  {line}" for line in removed)
        if removed
        else f"no cryptocast {gran} entries in the crontab; nothing to do"
    )


COMMANDS = (setup, stack_up, stack_down, stack_status, schedule, unschedule)
