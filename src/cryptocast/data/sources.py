"""One entry point for every source: :func:`load_ohlcv` returns the OHLCV contract."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cryptocast.config import Settings
from cryptocast.contracts import to_ohlcv
from cryptocast.data import binance
from cryptocast.data.files import read_directory
from cryptocast.data.sample import synthetic_candles
from cryptocast.data.scenarios import scenario_of

log = logging.getLogger(__name__)

FALLBACK_LINES = (
    "BINANCE IS NOT REACHABLE: FALLING BACK TO SYNTHETIC SAMPLE CANDLES",
    "({reason})",
    "Models trained in this run learn synthetic data. The run is tagged",
    "data_fallback=true in MLflow and ZenML. Use DATA=binance (or strict: true)",
    "to fail instead, or DATA=files DATA_DIR=... for your own candles.",
)


def fallback_banner(reason: str, width: int = 80) -> str:
    """The boxed warning of a run that fell back to sample data, ``reason`` wrapped
    inside the box (never cut)."""
    inner = width - 6
    lines = []
    for line in FALLBACK_LINES:
        lines += textwrap.wrap(line.format(reason=reason), inner, break_on_hyphens=False)
    rule = "#" * width
    return "\n".join(["", rule, *(f"#  {line:<{inner}}  #" for line in lines), rule, ""])


@dataclass
class Loaded:
    """The candles plus where they came from (tracked in MLflow and ZenML)."""

    frame: pd.DataFrame
    source: str  # the source actually used: binance | files | sample
    requested: str
    fallback: bool = False
    live: bool = False  # live data is subject to the freshness rule
    details: dict[str, Any] = field(default_factory=dict)


def trim_history(
    frame: pd.DataFrame, history: int, freq: str, now: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Keep, per pair, the candles within ``history`` periods of that pair's last one
    that is not dated after ``now``; rows dated after it are kept for validation's
    ``future_timestamp`` rule to name (one such row must not push the window past the
    real data)."""
    step = pd.Timedelta(freq)
    now = now or pd.Timestamp.now(tz="UTC")
    past = frame["timestamp"].where(frame["timestamp"] <= now)
    last = past.groupby(frame["pair"]).transform("max")
    keep = (frame["timestamp"] > last - history * step) | (frame["timestamp"] > now)
    return frame[keep].reset_index(drop=True)


def load_sample(cfg: Settings) -> pd.DataFrame:
    return to_ohlcv(
        pd.concat(
            [
                synthetic_candles(
                    pair,
                    periods=cfg.data.history,
                    end=pd.Timestamp(cfg.data.sample.end),
                    freq=cfg.freq,
                    seed=cfg.data.sample.seed,
                )
                for pair in cfg.pairs
            ],
            ignore_index=True,
        )
    )


def load_binance(
    cfg: Settings, exchange: binance.Exchange, *, retries: int | None = None
) -> pd.DataFrame:
    frames = [
        binance.load_cached(
            exchange,
            pair,
            freq=cfg.freq,
            history=cfg.data.history,
            cache_dir=cfg.data.cache_dir,
            exchange_name=cfg.data.exchange,
            page_limit=cfg.data.page_limit,
            retries=cfg.data.retries if retries is None else retries,
            backoff_s=cfg.data.backoff_s,
        )
        for pair in cfg.pairs
    ]
    return to_ohlcv(pd.concat(frames, ignore_index=True))


def load_ohlcv(
    cfg: Settings,
    *,
    exchange_factory: Callable[[str], binance.Exchange] = binance.make_exchange,
) -> Loaded:
    """Load candles (see :func:`_load`); with ``data.end`` set, only those opening by then
    (files keep ``history`` candles before it; sample and Binance data are cut)."""
    loaded = _load(cfg, exchange_factory=exchange_factory)
    if cfg.data.end is not None:
        end = pd.Timestamp(cfg.data.end).tz_convert("UTC")
        loaded.frame = loaded.frame[loaded.frame["timestamp"] <= end].reset_index(drop=True)
        loaded.live = False  # a run "as of" a past date is not judged for freshness
        loaded.details["end"] = str(end)
    return loaded


def _load(
    cfg: Settings,
    *,
    exchange_factory: Callable[[str], binance.Exchange],
) -> Loaded:
    """Load candles for every configured pair from the configured source.

    ``auto`` tries the exchange once (no retries, so an offline machine does not wait) and
    falls back to ``sample`` with a banner, unless ``data.strict`` is set.
    """
    source = cfg.data.source
    if source == "sample":
        return Loaded(load_sample(cfg), source="sample", requested=source)
    if source == "files":
        assert cfg.data.data_dir is not None  # enforced by Settings
        scan = read_directory(
            cfg.data.data_dir,
            pairs=cfg.pairs,
            freq=cfg.freq,
            mapping=cfg.data.files,
            quotes=cfg.data.quote_currencies,
        )
        frame = scan.frame
        if cfg.data.end is not None:  # "as of" a date: the history before it
            frame = frame[frame["timestamp"] <= pd.Timestamp(cfg.data.end).tz_convert("UTC")]
        read = frame.groupby("pair").size()
        frame = trim_history(frame, cfg.data.history, cfg.freq)
        for pair, n in frame.groupby("pair").size().items():
            if n < read[pair]:
                log.info("files: %s: %d candles read, the last %d kept (data.history: %d "
                         "candles up to its last one%s)", pair, read[pair], n, cfg.data.history,
                         f", until {cfg.data.end}" if cfg.data.end else "")  # fmt: skip
        details = {
            "dir": str(cfg.data.data_dir),
            "used": scan.used,
            "skipped": scan.skipped,
            "cdd_overlap_superseded": scan.superseded,
        }
        if (scenario := scenario_of(cfg.data.data_dir)) is not None:
            details["scenario"] = scenario
        return Loaded(frame, source="files", requested=source, details=details)
    # binance or auto
    retries = None if source == "binance" or cfg.data.strict else 0
    try:
        exchange = exchange_factory(cfg.data.exchange)
        frame = load_binance(cfg, exchange, retries=retries)
        return Loaded(frame, source="binance", requested=source, live=True)
    except binance.SourceUnavailable as exc:
        if source == "binance" or cfg.data.strict:
            raise
        log.warning(fallback_banner(str(exc)))
        return Loaded(
            load_sample(cfg),
            source="sample",
            requested=source,
            fallback=True,
            details={"fallback_reason": str(exc)},
        )
