"""The Kubernetes stack (``configs/stacks/kubernetes.yaml``): ``cryptocast k8s ...``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.errors import Refused


@click.group()
def k8s() -> None:
    """The Kubernetes stack: validate it, print or run its registration, write a run's
    configuration."""


@k8s.command()
def check() -> None:
    """Validate the stack file and the run overlay."""
    from cryptocast.runconfig import ConfigError
    from infra import k8s as stack

    try:
        stack.load_stack()
        stack.run_config({"parameters": {"config": {}}}, ["fit_global"], 1)
    except ConfigError as exc:
        raise Refused(str(exc)) from exc
    click.echo(f"{stack.STACK_FILE.name} and {stack.RUN_OVERLAY.name}: valid for ZenML")


@k8s.command()
def commands() -> None:
    """Print the zenml commands that register the stack."""
    from cryptocast.runconfig import ConfigError
    from infra import k8s as stack

    try:
        click.echo("\n".join(stack.register_commands(stack.load_stack())))
    except ConfigError as exc:
        raise Refused(str(exc)) from exc


@k8s.command()
def register() -> None:
    """Register what is missing and activate the stack."""
    from cryptocast.runconfig import ConfigError
    from infra import k8s as stack

    try:
        click.echo("\n".join(stack.register(stack.load_stack())) or "nothing to do")
    except ConfigError as exc:
        raise Refused(str(exc)) from exc


@k8s.command("run-config")
@click.argument("gran")
@click.argument("fit_steps", nargs=-1, required=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="default: stdout"
)
def run_config(gran: str, fit_steps: tuple[str, ...], threads: int, out: Path | None) -> None:
    """Write configs/GRAN.yaml + the overlay for the run's FIT_STEPS (fit_<shard>,
    fit_global)."""
    import yaml

    from cryptocast.paths import granularity_config
    from cryptocast.runconfig import ConfigError, load_run
    from infra import k8s as stack

    try:
        base = load_run(granularity_config(gran)).options  # the settings travel as `cfg`
        text = yaml.safe_dump(stack.run_config(base, list(fit_steps), threads), sort_keys=False)
    except ConfigError as exc:
        raise Refused(str(exc)) from exc
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


COMMANDS = (k8s,)
