"""Monitoring: the monitoring pipeline, what-if data for it, the Prometheus exporter."""

from __future__ import annotations

import sys
import time

import click

from cli.common import (
    GRANULARITIES,
    data_options,
    data_overrides,
    gran_option,
    load_for_run,
    settings,
    use_stack,
)
from cryptocast.errors import UserError
from cryptocast.paths import metrics_dir


@click.command()
@data_options
def monitor(gran: str, source: str | None, data_dir: str | None, pairs: str | None) -> None:
    """Live accuracy and drift of the champion; retrain when a threshold is crossed."""
    run = load_for_run(gran, None, data_overrides(source, data_dir, pairs))
    from infra.stack import ensure_stack
    from pipelines.monitoring import run_monitoring

    ensure_stack()
    t0 = time.perf_counter()
    try:
        run_monitoring(run)
    except UserError:
        raise  # one `error:` line, exit 2 (cli.main)
    except Exception as exc:
        click.secho(f"monitoring pipeline ({gran}) FAILED: {exc}", fg="red", err=True)
        sys.exit(1)
    click.secho(
        f"monitoring pipeline ({gran}) finished in {time.perf_counter() - t0:.1f}s", fg="green"
    )


@click.command("shift-data")
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
    import pandas as pd

    from cryptocast.data.scenarios import write_shifted
    from cryptocast.data.sources import load_ohlcv
    from cryptocast.data.validation import validate

    cfg = settings(gran, None, data_overrides("files", data_dir, pairs, until=until))
    clean, _ = validate(load_ohlcv(cfg)[0], cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    start = pd.Timestamp(after)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    for written in write_shifted(
        clean, out, after=start, return_scale=return_scale, volume_scale=volume_scale
    ):
        click.echo(written.line(start))


@click.command()
@click.option("--port", type=int, default=9464, show_default=True)
@click.option(
    "--ttl", type=float, default=10.0, show_default=True, help="Seconds a state read is reused."
)
def exporter(port: int, ttl: float) -> None:
    """Prometheus metrics of the served models and the system, on 127.0.0.1:PORT/metrics."""
    from cryptocast.observability.exporter import serve
    from infra.exporter_state import granularity_state

    use_stack()
    cfgs = [settings(gran) for gran in GRANULARITIES]
    serve(lambda: [granularity_state(cfg) for cfg in cfgs], metrics_dir(), port=port, ttl_s=ttl)


COMMANDS = (monitor, shift_data, exporter)
