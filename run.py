"""Command line of the project (the Makefile calls it): ``python run.py --help``."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent
GRANULARITIES = ("hour", "day")

os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")


def _config_path(gran: str, config: str | None = None) -> Path:
    return Path(config).resolve() if config else ROOT / "configs" / f"{gran}.yaml"


def _stack() -> None:
    """Make sure the cryptocast stack is active and point mlflow at its stores."""
    from pipelines.stack import configure_mlflow, ensure_stack

    ensure_stack()
    configure_mlflow()


def _settings(gran: str):
    from cryptocast.config import apply_overrides, load_run_config

    return apply_overrides(load_run_config(_config_path(gran))["parameters"]["config"])


@click.group()
def cli() -> None:
    """cryptocast: train, serve and inspect crypto forecasters."""
    logging.getLogger("cryptocast").setLevel(logging.INFO)


@cli.command()
def setup() -> None:
    """Initialise ZenML and register/activate the cryptocast stack (idempotent)."""
    from pipelines.stack import ensure_stack

    done = ensure_stack()
    click.echo(
        "\n".join(done) if done else "ZenML stack 'cryptocast' already set up; nothing to do"
    )


@cli.command()
@click.option("--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True)
@click.option(
    "--data",
    "source",
    type=click.Choice(["auto", "binance", "files", "sample"]),
    default=None,
    help="Override data.source of the config.",
)
@click.option("--data-dir", default=None, help="Directory of CSV/Parquet files (DATA=files).")
@click.option("--pairs", default=None, help='Space-separated pairs, e.g. "BTC/USDT ETH/USDT".')
@click.option("--config", default=None, help="Run configuration (default configs/<gran>.yaml).")
def train(
    gran: str, source: str | None, data_dir: str | None, pairs: str | None, config: str | None
) -> None:
    """Run load -> validate -> train -> evaluate -> deploy for one granularity."""
    from cryptocast.config import apply_overrides, load_run_config

    config_path = _config_path(gran, config)
    raw = load_run_config(config_path)
    pair_list = pairs.split() if pairs else None
    if data_dir:
        data_dir = str(Path(data_dir).resolve())
        source = source or "files"
    # fail fast on a bad override, before ZenML starts
    apply_overrides(raw["parameters"]["config"], source=source, data_dir=data_dir, pairs=pair_list)
    from pipelines.stack import ensure_stack
    from pipelines.training import training

    t0 = time.perf_counter()
    for line in ensure_stack():  # `make setup`, in-process (nothing to do when set up)
        click.echo(f"setup: {line}")
    try:
        training.with_options(config_path=str(config_path))(
            source=source, data_dir=data_dir, pairs=pair_list
        )
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


@cli.command()
def status() -> None:
    """What is served, which version, which URL."""
    from cryptocast import registry
    from steps import serving

    _stack()
    for gran in GRANULARITIES:
        name = _settings(gran).deploy.model_name
        champion = registry.alias_version(name)
        previous = registry.alias_version(name, registry.PREVIOUS)
        svc = serving.running(name)
        url = svc.prediction_url if svc else "not serving"
        served = svc.config.registry_model_version if svc else "-"
        click.echo(
            f"{gran:5s} {name}: champion v{champion or '-'} (previous v{previous or '-'})"
            f", served v{served} at {url}"
        )


@cli.command()
@click.option("--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True)
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--horizon", type=int, default=None)
def predict(gran: str, pair: str, horizon: int | None) -> None:
    """Ask the served champion for a forecast and print it as a table."""
    import pandas as pd

    from cryptocast.serving.client import ServingError, forecast
    from steps import serving

    _stack()
    name = _settings(gran).deploy.model_name
    svc = serving.running(name)
    if svc is None:
        raise click.ClickException(f"nothing serves {name}; run `make train GRAN={gran}` first")
    record = {"pair": pair} | ({"horizon": horizon} if horizon else {})
    try:
        table = pd.DataFrame(forecast(svc.prediction_url, [record]))
    except ServingError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"POST {svc.prediction_url}\n{table.to_string(index=False)}")


@cli.command("tracking-uri")
def tracking_uri() -> None:
    """Print the MLflow tracking URI of the active stack."""
    from pipelines.stack import tracking_uri as uri

    click.echo(uri())


@cli.command()
@click.option("--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True)
def versions(gran: str) -> None:
    """Registered model versions with aliases and tags."""
    from cryptocast import registry

    _stack()
    table = registry.version_table(_settings(gran).deploy.model_name)
    click.echo(table.to_string(index=False) if len(table) else "no registered versions")


@cli.command()
@click.option("--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True)
def manifest(gran: str) -> None:
    """Print models/<gran>_models/manifest.json."""
    path = ROOT / _settings(gran).deploy.models_dir / "manifest.json"
    if not path.exists():
        raise click.ClickException(f"{path} does not exist; run `make train GRAN={gran}`")
    click.echo(json.dumps(json.loads(path.read_text()), indent=2))


if __name__ == "__main__":
    cli()
