"""One entry point for every source: :func:`load_ohlcv` returns the OHLCV contract."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable

import pandas as pd

from cryptocast.config import LoadSection
from cryptocast.contracts import PairSpan, SourceInfo, to_ohlcv
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


def load_sample(cfg: LoadSection) -> pd.DataFrame:
    """``data.history`` synthetic candles per pair, ending at ``data.sample.end``
    (deterministic: the same seed gives the same candles on every machine)."""
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
    cfg: LoadSection, exchange: binance.Exchange, *, retries: int | None = None
) -> pd.DataFrame:
    """``data.history`` candles per pair from the exchange, cached as Parquet between
    runs; ``retries`` None: the config's, 0: one try (``auto`` on an offline machine)."""
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
    cfg: LoadSection,
    *,
    exchange_factory: Callable[[str], binance.Exchange] = binance.make_exchange,
) -> tuple[pd.DataFrame, SourceInfo]:
    """The candles (see :func:`_load`) and where they came from, with each pair's span;
    with ``data.end`` set, only those opening by then (files keep ``history`` candles
    before it; sample and Binance data are cut)."""
    frame, info = _load(cfg, exchange_factory=exchange_factory)
    if cfg.data.end is not None:
        end = pd.Timestamp(cfg.data.end).tz_convert("UTC")
        frame = frame[frame["timestamp"] <= end].reset_index(drop=True)
        # a run "as of" a past date is not judged for freshness
        info = info.model_copy(update={"live": False, "details": info.details | {"end": str(end)}})
    return frame, info.model_copy(update={"pairs": spans(frame)})


def spans(frame: pd.DataFrame) -> dict[str, PairSpan]:
    """Per pair: its first and last candle and how many there are."""
    span = frame.groupby("pair")["timestamp"].agg(["min", "max", "count"])
    return {
        str(p): PairSpan(first=str(r["min"]), last=str(r["max"]), rows=int(r["count"]))
        for p, r in span.iterrows()
    }


def _load(
    cfg: LoadSection,
    *,
    exchange_factory: Callable[[str], binance.Exchange],
) -> tuple[pd.DataFrame, SourceInfo]:
    """Load candles for every configured pair from the configured source.

    ``auto`` tries the exchange once (no retries, so an offline machine does not wait) and
    falls back to ``sample`` with a banner, unless ``data.strict`` is set.
    """
    source = cfg.data.source
    if source == "sample":
        return load_sample(cfg), SourceInfo(requested=source, used="sample")
    if source == "files":
        assert cfg.data.data_dir is not None  # enforced by Settings (source files needs data_dir)
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
        return frame, SourceInfo(requested=source, used="files", details=details)
    # binance or auto
    retries = None if source == "binance" or cfg.data.strict else 0
    try:
        exchange = exchange_factory(cfg.data.exchange)
        frame = load_binance(cfg, exchange, retries=retries)
        return frame, SourceInfo(requested=source, used="binance", live=True)
    except binance.SourceUnavailable as exc:
        if source == "binance" or cfg.data.strict:
            raise
        log.warning(fallback_banner(str(exc)))
        return load_sample(cfg), SourceInfo(
            requested=source,
            used="sample",
            fallback=True,
            details={"fallback_reason": str(exc)},
        )
