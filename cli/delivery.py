"""Delivery: serve, stop, promote, roll back, and look at what is served."""

from __future__ import annotations

import click

from cli.common import (
    GRANULARITIES,
    echo_record,
    gran_option,
    granularity_lock,
    json_option,
    settings,
    use_stack,
)
from cli.errors import Refused
from cryptocast.serving.bundle import MANIFEST


def _training(cfg) -> str:
    """Whether a training run of ``cfg`` holds its lock; if none does, runs still marked
    in progress were killed: they are marked failed here, and the model servers of a
    release killed before its commit are stopped."""
    from cryptocast.locks import Busy, exclusive, lock_path
    from infra import runs

    try:
        with exclusive(lock_path(cfg.deploy.models_dir), f"{cfg.granularity} status check"):
            marked = runs.fail_orphans(cfg, "killed: its process was gone")
            servers = runs.retire_orphan_servers(cfg)
    except Busy as exc:
        return f"busy: {exc}"
    said = [f"killed run(s) marked failed: {', '.join(marked)}"] if marked else []
    if servers:
        said.append(f"stopped the model server(s) a killed release left: {', '.join(servers)}")
    return "; ".join(said) or "no run in progress"


def _state(gran: str) -> dict:
    """What is served for ``gran``, as data (``status --json``)."""
    from cryptocast.delivery import registry
    from cryptocast.delivery.release import published_version
    from infra import deployer, frontdoor

    cfg = settings(gran)
    name = cfg.deploy.model_name
    training = _training(cfg)  # first: it stops a killed release's server, never listed here
    champion = registry.alias_version(name)
    svc = deployer.running(name, champion) if champion else deployer.running(name)
    front = frontdoor.status(cfg)
    return {
        "granularity": gran,
        "model_name": name,
        "champion": champion,
        "label": registry.label(name, champion) if champion else None,
        "previous": registry.alias_version(name, registry.PREVIOUS),
        "front_door": front["url"] if front else None,
        "model_server": svc.prediction_url if svc else None,
        "model_server_version": svc.config.registry_model_version if svc else None,
        "training": training,
        "published": published_version(cfg.deploy.models_dir),
        "models_dir": str(cfg.deploy.models_dir),
    }


def _status_lines(s: dict) -> list[str]:
    gran, name, champion = s["granularity"], s["model_name"], s["champion"]
    if champion is None:
        lines = [f"{gran:5s} {name}: no model trained yet (make train GRAN={gran})"]
    else:
        before = f"previous v{s['previous']}" if s["previous"] else "no previous version"
        what = f" ({s['label']})" if s["label"] else ""
        door = s["front_door"] or f"not running (make front GRAN={gran})"
        served = s["model_server"] and f"v{s['model_server_version']} at {s['model_server']}"
        lines = [
            f"{gran:5s} {name}: champion v{champion}{what} ({before})",
            f"      front door: {door}",
            f"      model server: {served or '-'}",
        ]
    lines.append(f"      training: {s['training']}")
    if champion and s["published"] != champion:
        lines.append(
            f"      UNFINISHED RELEASE: v{champion} is champion but {s['models_dir']} "
            f"holds v{s['published'] or '-'}; `make serve GRAN={gran}` finishes it"
        )
    return lines


@click.command()
@json_option
def status(as_json: bool) -> None:
    """What is served: champion, front door address, model server, unfinished releases."""
    import json

    from cryptocast.delivery import store

    use_stack()
    states = [_state(gran) for gran in GRANULARITIES]
    if as_json:
        out = {"granularities": states, "forecasts_database": store.database_url()}
        click.echo(json.dumps(out, indent=2))
        return
    for s in states:
        click.echo("\n".join(_status_lines(s)))
    click.echo(f"forecasts database: {store.database_url()}")


@click.command()
@gran_option
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--horizon", type=int, default=None)
def predict(gran: str, pair: str, horizon: int | None) -> None:
    """Ask the front door for a forecast and print it as a table."""
    import pandas as pd

    from cryptocast.serving.client import ForecastClient
    from infra import frontdoor

    cfg = settings(gran)
    if frontdoor.revive(cfg) is None:  # a killed front door is started again
        from cryptocast.delivery import registry

        use_stack()
        if registry.alias_version(cfg.deploy.model_name) is None:
            raise Refused(
                f"no {gran} model trained yet: run `make train GRAN={gran}` (it serves the "
                "model it promotes)"
            )
        raise Refused(
            f"the {gran} front door is not running: `make front GRAN={gran}` starts it "
            f"(`make serve GRAN={gran}` also restarts the champion's model server)"
        )
    url = frontdoor.url(cfg)
    record = {"pair": pair} | ({"horizon": horizon} if horizon else {})
    answer = ForecastClient(url).forecast([record])  # a ClientError is the user's: error: ...
    rows = []
    for f in answer.forecasts:
        row = f.model_dump()
        quantiles = row.pop("quantiles") or {}
        rows.append(row | {f"q{float(q):g}": v for q, v in sorted(quantiles.items(), key=_level)})
    table = pd.DataFrame(rows)
    click.echo(
        f"POST {url}/forecast: {answer.model_name} v{answer.model_version}"
        f" ({', '.join(sorted({f.model for f in answer.forecasts if f.model}))})\n"
        f"{table.to_string(index=False)}"
    )


def _level(item: tuple[str, float]) -> float:
    return float(item[0])


def _change_champion(
    gran: str, event: str, version: str | None, reason: str, as_json: bool
) -> None:
    """Shared by promote and rollback: make ``version`` the champion and serve it."""
    from cryptocast.contracts import ReconcileRecord
    from cryptocast.delivery.release import ReleaseError
    from infra.release_adapters import release_for
    from infra.tracking import record_event

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, event):
        release = release_for(cfg)
        try:
            result = release.change_champion(version, event=event, reason=reason)
        except ReleaseError as exc:
            raise Refused(str(exc)) from exc
        if isinstance(result, ReconcileRecord):
            click.echo(
                f"{cfg.deploy.model_name} v{result.champion} is already the champion; "
                "made sure it is served"
            )
        record_event(cfg, event, result, reason)
    echo_record(result, cfg.deploy.model_name, as_json)


@click.command()
@gran_option
@click.option("--version", required=True, help="Registered version to make the champion.")
@click.option("--reason", default="manual promotion", show_default=True)
@json_option
def promote(gran: str, version: str, reason: str, as_json: bool) -> None:
    """A person's override: make VERSION the champion and serve it (recorded as such)."""
    _change_champion(gran, "manual_promote", version, reason, as_json)


@click.command()
@gran_option
@click.option("--version", default=None, help="Default: the 'previous' alias.")
@click.option("--reason", default="rollback", show_default=True)
@json_option
def rollback(gran: str, version: str | None, reason: str, as_json: bool) -> None:
    """Move the champion back to 'previous' (or VERSION) and serve it. The champion it
    replaces becomes 'previous', so a second rollback undoes the first."""
    _change_champion(gran, "rollback", version, reason, as_json)


@click.command()
@gran_option
@json_option
def serve(gran: str, as_json: bool) -> None:
    """Start, or restart without downtime, the champion's server; heal files and forecasts."""
    from infra.release_adapters import release_for

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, "serve"):
        result = release_for(cfg).reconcile(restart=True)
    if result.champion is None:
        raise Refused(f"no champion for {gran} yet; run `make train GRAN={gran}`")
    echo_record(result, cfg.deploy.model_name, as_json)


@click.command()
@gran_option
def stop(gran: str) -> None:
    """Stop every server of this granularity, and its front door."""
    from infra import deployer, frontdoor

    use_stack()
    cfg = settings(gran)
    with granularity_lock(cfg, "stop"):
        front = frontdoor.stop(cfg)
        gone = deployer.retire_others(cfg.deploy.model_name, keep=None)
    click.echo(f"stopped {cfg.deploy.model_name} servers: {gone or 'none were running'}")
    click.echo(f"stopped the front door (pid {front})" if front else "no front door was running")


@click.command()
@gran_option
def front(gran: str) -> None:
    """Start the stable front door of GRAN in the background (if it is not running)."""
    from cryptocast.serving.client import ClientError, ForecastClient
    from infra import frontdoor

    cfg = settings(gran)
    try:
        state = frontdoor.ensure_running(cfg)
        info = ForecastClient(state["url"]).wait_ready(cfg.service.restart_wait_s)
    except frontdoor.PortTaken:
        raise  # the user's to fix: one `error:` line, exit 2
    except (RuntimeError, ClientError) as exc:  # a failure (exit 1), not a refusal
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"front door of {gran}: {state['url']} (pid {state['pid']}, log {state['log']}); "
        f"answering as {info.model_name} v{info.model_version}; docs: {state['url']}/docs"
    )


@click.command("front-stop")
@gran_option
def front_stop(gran: str) -> None:
    """Stop the front door of GRAN (the model servers keep running)."""
    from infra import frontdoor

    pid = frontdoor.stop(settings(gran))
    click.echo(f"stopped the front door (pid {pid})" if pid else "no front door was running")


@click.command("front-run", hidden=True)
@click.option("--settings", "settings_path", required=True, help="Settings JSON (internal).")
def front_run(settings_path: str) -> None:
    """The front door in this process (what `front` starts in the background)."""
    from pathlib import Path

    from cryptocast.config import Settings
    from infra import frontdoor_server

    frontdoor_server.run(Settings.model_validate_json(Path(settings_path).read_text()))


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
    from cryptocast.delivery import store

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
    from cryptocast.modeling.reports import metrics_markdown

    paths = [Path(m) for m in manifests] or [settings(gran).deploy.models_dir / MANIFEST]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise Refused(f"no manifest at {missing}; run `make train GRAN={gran}`")
    text = "\n".join(metrics_markdown(Manifest.model_validate_json(p.read_text())) for p in paths)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    click.echo(text)


@click.command()
@gran_option
def versions(gran: str) -> None:
    """Registered model versions with aliases and tags."""
    from cryptocast.contracts import LABEL_TAG, MODEL_TAG_PREFIX
    from cryptocast.delivery import registry

    use_stack()
    table = registry.version_table(settings(gran).deploy.model_name)
    if table.empty:
        click.echo("no registered versions")
        return
    shown = [
        "version",
        "aliases",
        LABEL_TAG,
        "promoted_by",
        "promoted_at",
        "promotion_reason",
        "data_source",
        "challenger_mean_mase",
        *sorted(c for c in table if c.startswith(MODEL_TAG_PREFIX)),
        "git_commit",
    ]
    table = table.reindex(columns=shown).fillna("")
    table["git_commit"] = table["git_commit"].str[:12]
    long = table["promotion_reason"].str.len() > 60  # whole in the version's MLflow tags
    table.loc[long, "promotion_reason"] = table.loc[long, "promotion_reason"].str[:59] + "…"
    click.echo(table.to_string(index=False))


@click.command()
@gran_option
def manifest(gran: str) -> None:
    """Print models/<gran>_models/manifest.json."""
    path = settings(gran).deploy.models_dir / MANIFEST
    if not path.exists():
        raise Refused(f"{path} does not exist; run `make train GRAN={gran}`")
    click.echo(path.read_text())


COMMANDS = (
    status,
    predict,
    front,
    front_stop,
    front_run,
    promote,
    rollback,
    serve,
    stop,
    forecasts,
    metrics,
    versions,
    manifest,
)
