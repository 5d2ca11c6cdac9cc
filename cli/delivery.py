"""Delivery: serve, stop, promote, roll back, and look at what is served."""

from __future__ import annotations

import click

from cli.common import (
    GRANULARITIES,
    echo_record,
    gran_option,
    granularity_lock,
    settings,
    use_stack,
)
from cryptocast.bundle import MANIFEST


@click.command()
def status() -> None:
    """What is served, which version, which URL."""
    from cryptocast import registry, store
    from infra import deployer

    use_stack()
    for gran in GRANULARITIES:
        name = settings(gran).deploy.model_name
        champion = registry.alias_version(name)
        previous = registry.alias_version(name, registry.PREVIOUS)
        svc = deployer.running(name, champion) if champion else deployer.running(name)
        url = svc.prediction_url if svc else "not serving"
        served = svc.config.registry_model_version if svc else "-"
        click.echo(
            f"{gran:5s} {name}: champion v{champion or '-'} (previous v{previous or '-'})"
            f", served v{served} at {url}"
        )
    click.echo(f"forecasts database: {store.database_url()}")


@click.command()
@gran_option
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--horizon", type=int, default=None)
def predict(gran: str, pair: str, horizon: int | None) -> None:
    """Ask the served champion for a forecast and print it as a table."""
    import pandas as pd

    from cryptocast import registry
    from cryptocast.serving.client import ServingError, forecast
    from infra import deployer

    use_stack()
    name = settings(gran).deploy.model_name
    champion = registry.alias_version(name)
    svc = deployer.running(name, champion) if champion else None
    if svc is None:
        raise click.ClickException(
            f"nothing serves {name} (champion v{champion}); run `make serve GRAN={gran}`, or "
            f"`make train GRAN={gran}` if there is no champion yet"
        )
    record = {"pair": pair} | ({"horizon": horizon} if horizon else {})
    try:
        table = pd.DataFrame(forecast(svc.prediction_url, [record]))
    except ServingError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"POST {svc.prediction_url}\n{table.to_string(index=False)}")


def _change_champion(gran: str, event: str, version: str | None, reason: str) -> None:
    """Shared by promote and rollback: make ``version`` the champion and serve it."""
    from cryptocast.contracts import ReconcileRecord
    from cryptocast.release import ReleaseError
    from infra.release import release_for
    from infra.tracking import record_event

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, event):
        release = release_for(cfg)
        try:
            result = release.change_champion(version, event=event, reason=reason)
        except ReleaseError as exc:
            raise click.ClickException(str(exc)) from exc
        if isinstance(result, ReconcileRecord):
            click.echo(
                f"{cfg.deploy.model_name} v{result.champion} is already the champion; "
                "made sure it is served"
            )
        record_event(cfg, event, result, reason)
    echo_record(result)


@click.command()
@gran_option
@click.option("--version", required=True, help="Registered version to make the champion.")
@click.option("--reason", default="manual promotion", show_default=True)
def promote(gran: str, version: str, reason: str) -> None:
    """A person's override: make VERSION the champion and serve it (recorded as such)."""
    _change_champion(gran, "manual_promote", version, reason)


@click.command()
@gran_option
@click.option("--version", default=None, help="Default: the 'previous' alias.")
@click.option("--reason", default="rollback", show_default=True)
def rollback(gran: str, version: str | None, reason: str) -> None:
    """Move the champion back to 'previous' (or VERSION) and serve it. The champion it
    replaces becomes 'previous', so a second rollback undoes the first."""
    _change_champion(gran, "rollback", version, reason)


@click.command()
@gran_option
def serve(gran: str) -> None:
    """Start, or restart without downtime, the champion's server; heal files and forecasts."""
    from infra.release import release_for

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, "serve"):
        result = release_for(cfg).reconcile(restart=True)
    if result.champion is None:
        raise click.ClickException(f"no champion for {gran} yet; run `make train GRAN={gran}`")
    echo_record(result)


@click.command()
@gran_option
def stop(gran: str) -> None:
    """Stop every server of this granularity."""
    from infra import deployer

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, "stop"):
        gone = deployer.retire_others(cfg.deploy.model_name, keep=None)
    click.echo(f"stopped {cfg.deploy.model_name} servers: {gone or 'none were running'}")


FORECAST_TABLE = (
    "pair",
    "model_version",
    "origin",
    "target_time",
    "step",
    "forecast",
    "lower",
    "upper",
    "issued_at",
)


@click.command()
@gran_option
@click.option("--all", "show_all", is_flag=True, help="Every stored row, not only the latest.")
def forecasts(gran: str, show_all: bool) -> None:
    """The forecasts stored in the database ($DATABASE_URL, default SQLite)."""
    from cryptocast import store

    engine = store.connect()
    name = settings(gran).deploy.model_name
    table = (store.read_forecasts if show_all else store.latest_forecasts)(engine, gran, name)
    click.echo(f"{store.database_url()}: {len(table)} rows")
    if len(table):
        click.echo(table[list(FORECAST_TABLE)].to_string(index=False))


@click.command()
@gran_option
@click.option("--manifest", "manifests", multiple=True, help="Manifest file(s) to report.")
@click.option("--out", default=None, help="Also write the markdown to this file.")
def metrics(gran: str, manifests: tuple[str, ...], out: str | None) -> None:
    """Markdown metrics table of the served bundle (or of --manifest files)."""
    from pathlib import Path

    from cryptocast.contracts import Manifest
    from cryptocast.reports import metrics_markdown

    paths = [Path(m) for m in manifests] or [settings(gran).deploy.models_dir / MANIFEST]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.ClickException(f"no manifest at {missing}; run `make train GRAN={gran}`")
    text = "\n".join(metrics_markdown(Manifest.model_validate_json(p.read_text())) for p in paths)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    click.echo(text)


@click.command()
@gran_option
def versions(gran: str) -> None:
    """Registered model versions with aliases and tags."""
    from cryptocast import registry
    from cryptocast.contracts import MODEL_TAG_PREFIX

    use_stack()
    table = registry.version_table(settings(gran).deploy.model_name)
    if table.empty:
        click.echo("no registered versions")
        return
    shown = [
        "version",
        "aliases",
        "promoted_by",
        "promoted_at",
        "data_source",
        "challenger_mean_mase",
        *sorted(c for c in table if c.startswith(MODEL_TAG_PREFIX)),
        "git_commit",
    ]
    table = table.reindex(columns=shown).fillna("")
    table["git_commit"] = table["git_commit"].str[:12]
    click.echo(table.to_string(index=False))


@click.command()
@gran_option
def manifest(gran: str) -> None:
    """Print models/<gran>_models/manifest.json."""
    path = settings(gran).deploy.models_dir / MANIFEST
    if not path.exists():
        raise click.ClickException(f"{path} does not exist; run `make train GRAN={gran}`")
    click.echo(path.read_text())


COMMANDS = (
    status,
    predict,
    promote,
    rollback,
    serve,
    stop,
    forecasts,
    metrics,
    versions,
    manifest,
)
