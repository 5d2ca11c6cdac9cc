"""Command line of the project (the Makefile calls it): ``python run.py --help``."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent
GRANULARITIES = ("hour", "day")

os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")
# where served models write their Prometheus counters (read by `run.py exporter`)
os.environ.setdefault("CRYPTOCAST_METRICS_DIR", str(ROOT / ".metrics"))


gran_option = click.option(
    "--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True
)


def data_options(command):
    """``--gran``, ``--data``, ``--data-dir``, ``--pairs``: what a pipeline runs on."""
    options = (
        gran_option,
        click.option(
            "--data",
            "source",
            type=click.Choice(["auto", "binance", "files", "sample"]),
            default=None,
            help="Override data.source of the config.",
        ),
        click.option("--data-dir", default=None, help="Directory of CSV/Parquet files."),
        click.option("--pairs", default=None, help='Space-separated, e.g. "BTC/USDT ETH/USDT".'),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _config_path(gran: str, config: str | None = None) -> Path:
    """``--config``, else ``$CRYPTOCAST_CONFIG_DIR/<gran>.yaml``, else configs/<gran>.yaml."""
    if config:
        return Path(config).resolve()
    return Path(os.environ.get("CRYPTOCAST_CONFIG_DIR", ROOT / "configs")) / f"{gran}.yaml"


def _stack() -> None:
    """Make sure the cryptocast stack is active and point mlflow at its stores."""
    from pipelines.stack import configure_mlflow, ensure_stack

    ensure_stack()
    configure_mlflow()


def _settings(gran: str, **overrides):
    from cryptocast.config import load_settings

    return load_settings(_config_path(gran), **overrides)


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
    from cryptocast.config import apply_overrides, load_run_config

    config_path = _config_path(gran, config)
    raw = load_run_config(config_path)
    pair_list = pairs.split() if pairs else None
    if data_dir:
        data_dir = str(Path(data_dir).resolve())
        source = source or "files"
    # fail fast on a bad override, before ZenML starts
    apply_overrides(
        raw["parameters"]["config"], source=source, data_dir=data_dir, pairs=pair_list, until=until
    )
    from pipelines.stack import ensure_stack
    from pipelines.training import training

    t0 = time.perf_counter()
    models_dir = apply_overrides(raw["parameters"]["config"]).deploy.models_dir
    try:
        with _granularity_lock(gran, "training run", models_dir):
            for line in ensure_stack():  # `make setup`, in-process (no-op when set up)
                click.echo(f"setup: {line}")
            training.with_options(config_path=str(config_path))(
                source=source, data_dir=data_dir, pairs=pair_list, until=until
            )
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


@cli.command()
@data_options
def monitor(gran: str, source: str | None, data_dir: str | None, pairs: str | None) -> None:
    """Live accuracy and drift of the champion; retrain when a threshold is crossed."""
    import tempfile

    import yaml

    from cryptocast.config import load_run_config
    from pipelines.monitoring import monitoring
    from pipelines.stack import ensure_stack

    if data_dir:
        data_dir = str(Path(data_dir).resolve())
        source = source or "files"
    run = load_run_config(_config_path(gran))
    tracker = {"experiment_tracker": run["steps"]["load"]["experiment_tracker"]}
    run["steps"] = {
        name: dict(tracker)
        for name in (
            "load",
            "split",
            "score_live",
            "check_drift",
            "decide_retrain",
            "trigger_training",
        )
    }
    run["enable_cache"] = False
    ensure_stack()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(run, fh)
    t0 = time.perf_counter()
    try:
        monitoring.with_options(config_path=fh.name)(
            source=source, data_dir=data_dir, pairs=pairs.split() if pairs else None
        )
    except Exception as exc:
        click.secho(f"monitoring pipeline ({gran}) FAILED: {exc}", fg="red", err=True)
        sys.exit(1)
    finally:
        os.unlink(fh.name)
    click.secho(
        f"monitoring pipeline ({gran}) finished in {time.perf_counter() - t0:.1f}s", fg="green"
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
        svc = serving.running(name, champion) if champion else serving.running(name)
        url = svc.prediction_url if svc else "not serving"
        served = svc.config.registry_model_version if svc else "-"
        click.echo(
            f"{gran:5s} {name}: champion v{champion or '-'} (previous v{previous or '-'})"
            f", served v{served} at {url}"
        )
    from cryptocast.store import database_url

    click.echo(f"forecasts database: {database_url()}")


@cli.command()
@gran_option
@click.option("--pair", default="BTC/USDT", show_default=True)
@click.option("--horizon", type=int, default=None)
def predict(gran: str, pair: str, horizon: int | None) -> None:
    """Ask the served champion for a forecast and print it as a table."""
    import pandas as pd

    from cryptocast import registry
    from cryptocast.serving.client import ServingError, forecast
    from steps import serving

    _stack()
    name = _settings(gran).deploy.model_name
    champion = registry.alias_version(name)
    svc = serving.running(name, champion) if champion else None
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


@contextmanager
def _granularity_lock(gran: str, what: str, models_dir: Path | None = None) -> Iterator[None]:
    """One run, deploy, promotion, rollback or serve per granularity at a time."""
    from cryptocast.locks import Busy, exclusive, lock_path

    path = lock_path(ROOT / (models_dir or _settings(gran).deploy.models_dir))
    try:
        with exclusive(path, f"{gran} {what}"):
            yield
    except Busy as exc:
        raise click.ClickException(str(exc)) from exc


def _release(gran: str, event: str, version: str | None, reason: str) -> None:
    """Shared by promote and rollback: make ``version`` the champion and serve it."""
    from cryptocast import registry
    from steps import release

    _stack()
    cfg = _settings(gran)
    with _granularity_lock(gran, event):
        name = cfg.deploy.model_name
        current = registry.alias_version(name)
        if version is None:  # rollback without VERSION: to the previous champion
            version = registry.alias_version(name, registry.PREVIOUS)
            if version is None:
                raise click.ClickException(f"{name} has no previous version to roll back to")
        try:
            registry.require_version(name, version)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        if version == current:
            click.echo(f"{name} v{version} is already the champion; making sure it is served")
            result = release.reconcile(cfg)
        else:
            result = release.activate(
                cfg,
                version=version,
                pairs=registry.version_pairs(name, version),
                event=event,
                reason=reason,
            )
            release.record_event(cfg, event, result, reason)
        click.echo(json.dumps(result, indent=2, default=str))


@cli.command()
@gran_option
@click.option("--version", required=True, help="Registered version to make the champion.")
@click.option("--reason", default="manual promotion", show_default=True)
def promote(gran: str, version: str, reason: str) -> None:
    """A person's override: make VERSION the champion and serve it (recorded as such)."""
    _release(gran, "manual_promote", version, reason)


@cli.command()
@gran_option
@click.option("--version", default=None, help="Default: the 'previous' alias.")
@click.option("--reason", default="rollback", show_default=True)
def rollback(gran: str, version: str | None, reason: str) -> None:
    """Move the champion back to 'previous' (or VERSION) and serve it. The champion it
    replaces becomes 'previous', so a second rollback undoes the first."""
    _release(gran, "rollback", version, reason)


@cli.command()
@gran_option
def serve(gran: str) -> None:
    """Start, or restart without downtime, the champion's server; heal files and forecasts."""
    from steps import release

    _stack()
    cfg = _settings(gran)
    with _granularity_lock(gran, "serve"):
        result = release.reconcile(cfg, restart=True)
    if result["champion"] is None:
        raise click.ClickException(f"no champion for {gran} yet; run `make train GRAN={gran}`")
    click.echo(json.dumps(result, indent=2, default=str))


@cli.command()
@gran_option
def stop(gran: str) -> None:
    """Stop every server of this granularity."""
    from steps import serving

    _stack()
    cfg = _settings(gran)
    with _granularity_lock(gran, "stop"):
        gone = serving.retire_others(cfg.deploy.model_name, keep=None)
    click.echo(f"stopped {cfg.deploy.model_name} servers: {gone or 'none were running'}")


@cli.command()
@gran_option
@click.option("--all", "show_all", is_flag=True, help="Every stored row, not only the latest.")
def forecasts(gran: str, show_all: bool) -> None:
    """The forecasts stored in the database ($DATABASE_URL, default SQLite)."""
    from cryptocast import store

    engine = store.connect()
    name = _settings(gran).deploy.model_name
    table = (store.read_forecasts if show_all else store.latest_forecasts)(engine, gran, name)
    click.echo(f"{store.database_url()}: {len(table)} rows")
    if len(table):
        cols = [
            "pair",
            "model_version",
            "origin",
            "target_time",
            "step",
            "forecast",
            "lower",
            "upper",
            "issued_at",
        ]
        click.echo(table[cols].to_string(index=False))


def metrics_markdown(manifest: dict) -> str:
    """A markdown table of a bundle's per-pair metrics (CI summaries, release PR body)."""
    lines = [
        f"### {manifest['model_name']} v{manifest['model_version']} ({manifest['granularity']},"
        f" data: {manifest.get('data_source', '?')})",
        "",
        "| pair | model | MASE | naive MASE | sMAPE | MAE | coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, entry in sorted(manifest["pairs"].items()):
        m = entry["metrics"]
        lines.append(
            f"| {pair} | {entry['candidate']} | {m['mase']:.4f} | {entry['naive_mase']:.4f} | "
            f"{m['smape']:.3f} | {m['mae']:.4g} | {m['coverage']:.2f} |"
        )
    return "\n".join(lines) + "\n"


@cli.command()
@gran_option
@click.option("--manifest", "manifests", multiple=True, help="Manifest file(s) to report.")
@click.option("--out", default=None, help="Also write the markdown to this file.")
def metrics(gran: str, manifests: tuple[str, ...], out: str | None) -> None:
    """Markdown metrics table of the served bundle (or of --manifest files)."""
    paths = [Path(m) for m in manifests] or [
        ROOT / _settings(gran).deploy.models_dir / "manifest.json"
    ]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.ClickException(f"no manifest at {missing}; run `make train GRAN={gran}`")
    text = "\n".join(metrics_markdown(json.loads(p.read_text())) for p in paths)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    click.echo(text)


@cli.command("shift-data")
@gran_option
@click.option("--data-dir", required=True, help="Directory of CSV/Parquet files to start from.")
@click.option("--out", required=True, help="Directory to write the canonical CSV files to.")
@click.option("--after", required=True, help="UTC time: candles after it are shifted.")
@click.option("--until", default=None, help="UTC time: candles after it are left out.")
@click.option("--return-scale", type=float, default=1.0, show_default=True)
@click.option("--volume-scale", type=float, default=1.0, show_default=True)
@click.option("--pairs", default=None, help="Space-separated pairs (default: the config's).")
def shift_data(
    gran: str,
    data_dir: str,
    out: str,
    after: str,
    until: str | None,
    return_scale: float,
    volume_scale: float,
    pairs: str | None,
) -> None:
    """Write a what-if copy of DATA_DIR for `make monitor`: the candles a training run
    would load (up to UNTIL) after validation, with a shifted distribution after AFTER
    (one-step log returns x RETURN_SCALE, volume x VOLUME_SCALE)."""
    import numpy as np
    import pandas as pd

    from cryptocast.contracts import pair_slug
    from cryptocast.data.scenarios import shifted
    from cryptocast.data.sources import load_ohlcv
    from cryptocast.validation import validate

    cfg = _settings(
        gran,
        source="files",
        data_dir=str(Path(data_dir).resolve()),
        pairs=pairs.split() if pairs else None,
        until=until,
    )
    clean, _ = validate(load_ohlcv(cfg).frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    start = pd.Timestamp(after)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    frame = shifted(clean, after=start, return_scale=return_scale, volume_scale=volume_scale)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for pair, g in frame.groupby("pair"):
        g.assign(timestamp=g["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
            target / f"{pair_slug(pair)}.csv", index=False
        )
        r = np.log(g["close"]).diff()
        later = g["timestamp"] > start
        click.echo(
            f"{pair}: {len(g)} candles, {int(later.sum())} after {start} "
            f"(return std {r[~later].std():.4f} -> {r[later].std():.4f}) -> "
            f"{target / (pair_slug(pair) + '.csv')}"
        )


@cli.command("tracking-uri")
def tracking_uri() -> None:
    """Print the MLflow tracking URI of the active stack."""
    from pipelines.stack import tracking_uri as uri

    click.echo(uri())


@cli.command()
@gran_option
def versions(gran: str) -> None:
    """Registered model versions with aliases and tags."""
    from cryptocast import registry

    _stack()
    table = registry.version_table(_settings(gran).deploy.model_name)
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
        *sorted(c for c in table if c.startswith("model.")),
        "git_commit",
    ]
    table = table.reindex(columns=shown).fillna("")
    table["git_commit"] = table["git_commit"].str[:12]
    click.echo(table.to_string(index=False))


@cli.command()
@click.option("--port", type=int, default=9464, show_default=True)
@click.option(
    "--ttl", type=float, default=10.0, show_default=True, help="Seconds a state read is reused."
)
def exporter(port: int, ttl: float) -> None:
    """Prometheus metrics of the served models and the system, on 127.0.0.1:PORT/metrics."""
    from cryptocast.exporter import serve
    from cryptocast.telemetry import METRICS_DIR_ENV
    from steps.telemetry import granularity_state

    _stack()
    cfgs = [_settings(gran) for gran in GRANULARITIES]
    serve(
        lambda: [granularity_state(cfg) for cfg in cfgs],
        Path(os.environ[METRICS_DIR_ENV]),
        port=port,
        ttl_s=ttl,
    )


def _crontab(*args: str, stdin: str | None = None) -> str:
    """Run ``crontab`` (``$CRYPTOCAST_CRONTAB`` if set); ``crontab -l`` without a crontab
    is an empty one."""
    import shutil
    import subprocess

    exe = os.environ.get("CRYPTOCAST_CRONTAB") or shutil.which("crontab")
    if not exe:
        raise click.ClickException(
            "crontab not found: install cron (Debian/Ubuntu: apt-get install cron)"
        )
    proc = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        if args == ("-l",) and "no crontab" in proc.stderr:
            return ""
        raise click.ClickException(f"crontab {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


@cli.command()
@gran_option
@click.option("--options", default="", help='Extra make variables, e.g. "DATA=files DATA_DIR=/x".')
def schedule(gran: str, options: str) -> None:
    """Install the cron entries of GRAN (monitor + regular training); print them."""
    import getpass
    import shutil

    from cryptocast import schedule as cron

    m = _settings(gran).monitoring
    lines = cron.cron_lines(
        ROOT,
        gran,
        monitor=m.schedule,
        retrain=m.retrain_schedule,
        make=shutil.which("make") or "make",
        options=options,
    )
    (ROOT / "logs").mkdir(exist_ok=True)
    _crontab("-", stdin=cron.with_lines(_crontab("-l"), cron.marker(ROOT, gran), lines))
    click.echo(f"installed in the crontab of {getpass.getuser()}:")
    click.echo("\n".join(f"  {line}" for line in lines))
    click.echo(f"logs: {ROOT / 'logs'}; remove with `make unschedule GRAN={gran}`")


@cli.command()
@gran_option
def unschedule(gran: str) -> None:
    """Remove the cron entries `schedule` installed for GRAN (and nothing else)."""
    from cryptocast import schedule as cron

    tag = cron.marker(ROOT, gran)
    before = _crontab("-l")
    after = cron.without(before, tag)
    removed = cron.ours(before, tag)
    _crontab("-", stdin=after)
    click.echo(
        "removed:\n" + "\n".join(f"  {line}" for line in removed)
        if removed
        else f"no cryptocast {gran} entries in the crontab; nothing to do"
    )


@cli.command()
@gran_option
def manifest(gran: str) -> None:
    """Print models/<gran>_models/manifest.json."""
    path = ROOT / _settings(gran).deploy.models_dir / "manifest.json"
    if not path.exists():
        raise click.ClickException(f"{path} does not exist; run `make train GRAN={gran}`")
    click.echo(json.dumps(json.loads(path.read_text()), indent=2))


if __name__ == "__main__":
    cli()
