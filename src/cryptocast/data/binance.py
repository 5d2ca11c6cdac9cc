"""Binance candles through ccxt's public endpoints (no API key), cached as Parquet.

``fetch_ohlcv`` is paginated (``since`` + ``limit``), network errors and rate limits are
retried with exponential backoff, and the on-disk cache is refreshed incrementally: only
candles newer than the last cached one are requested. The still-open candle is dropped.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from cryptocast.contracts import OHLCV_COLUMNS, pair_slug, to_ohlcv
from cryptocast.errors import UserError

log = logging.getLogger(__name__)


class SourceUnavailable(UserError, RuntimeError):
    """The exchange could not be reached after all retries."""


class Exchange(Protocol):
    """The part of a ccxt exchange this module uses (a fake one in tests)."""

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[float]]:
        """Candles of ``symbol`` as ccxt returns them: ``[time_ms, open, high, low, close, volume]``
        rows from ``since``, at most ``limit``."""


def ccxt_timeframe(freq: str) -> str:
    """'1h' -> '1h', '1D' -> '1d', '15min' -> '15m'."""
    seconds = int(pd.Timedelta(freq).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"frequency {freq} has no ccxt timeframe")


def make_exchange(name: str = "binance", timeout_ms: int = 10_000) -> Exchange:
    """A rate-limited ccxt client of exchange ``name`` (ccxt is imported when first needed:
    a run on files or the sample never loads it)."""
    import ccxt

    return getattr(ccxt, name)({"enableRateLimit": True, "timeout": timeout_ms})


def _retryable() -> tuple[type[BaseException], ...]:
    import ccxt

    return (ccxt.NetworkError,)  # includes timeouts, DDoSProtection/RateLimitExceeded


def call_with_retry(
    fn: Callable[[], Any],
    *,
    retries: int,
    backoff_s: float,
    retry_on: tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Call ``fn``; on ``retry_on`` errors wait backoff, 2x backoff, ... up to ``retries``."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except retry_on as exc:
            if attempt == retries:
                raise SourceUnavailable(f"gave up after {retries + 1} attempts: {exc}") from exc
            wait = backoff_s * 2**attempt
            log.warning(
                "exchange error (%s); retry %d/%d in %.1fs", exc, attempt + 1, retries, wait
            )
            sleep(wait)
    raise AssertionError("unreachable")


def fetch_range(
    exchange: Exchange,
    pair: str,
    *,
    freq: str,
    since: pd.Timestamp,
    until: pd.Timestamp,
    page_limit: int = 1000,
    retries: int = 4,
    backoff_s: float = 1.0,
    retry_on: tuple[type[BaseException], ...] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Closed candles of ``pair`` with open time in [since, until - freq], page by page."""
    step = pd.Timedelta(freq)
    timeframe = ccxt_timeframe(freq)
    retry_on = retry_on if retry_on is not None else _retryable()
    cursor = int(since.timestamp() * 1000)
    last_closed = int((until - step).timestamp() * 1000)
    rows: list[list[float]] = []
    while cursor <= last_closed:
        page = call_with_retry(
            lambda c=cursor: exchange.fetch_ohlcv(pair, timeframe, c, page_limit),
            retries=retries,
            backoff_s=backoff_s,
            retry_on=retry_on,
            sleep=sleep,
        )
        page = [r for r in page if cursor <= r[0] <= last_closed]
        if not page:
            break
        rows.extend(page)
        cursor = int(page[-1][0]) + int(step.total_seconds() * 1000)
        log.info(
            "binance %s: %d candles fetched (up to %s)",
            pair,
            len(rows),
            pd.Timestamp(page[-1][0], unit="ms", tz="UTC"),
        )
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
    frame.insert(0, "pair", pair)
    return to_ohlcv(frame)


def cache_path(cache_dir: Path, exchange: str, pair: str, freq: str) -> Path:
    """The Parquet file that caches the candles of ``pair`` at ``freq`` from ``exchange`` under
    ``cache_dir``."""
    return Path(cache_dir) / f"{exchange}_{pair_slug(pair)}_{ccxt_timeframe(freq)}.parquet"


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def load_cached(
    exchange: Exchange,
    pair: str,
    *,
    freq: str,
    history: int,
    cache_dir: Path,
    exchange_name: str = "binance",
    now: pd.Timestamp | None = None,
    **fetch_kwargs: Any,
) -> pd.DataFrame:
    """Last ``history`` closed candles of ``pair``: cache first, then only newer candles."""
    step = pd.Timedelta(freq)
    now = (now or pd.Timestamp.now(tz="UTC")).floor(step)
    start = now - history * step
    path = cache_path(cache_dir, exchange_name, pair, freq)
    cached = pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(OHLCV_COLUMNS))
    cached = to_ohlcv(cached) if len(cached) else cached
    since = start
    if len(cached) and cached["timestamp"].min() <= start:
        since = max(start, cached["timestamp"].max() + step)
    else:
        cached = cached.iloc[0:0]
    fresh = fetch_range(exchange, pair, freq=freq, since=since, until=now, **fetch_kwargs)
    log.info("binance %s: %d cached + %d new candles", pair, len(cached), len(fresh))
    merged = pd.concat([cached, fresh], ignore_index=True) if len(cached) else fresh
    merged = merged.drop_duplicates(subset=["timestamp"], keep="last")
    merged = to_ohlcv(merged)
    if len(fresh):
        _write_atomic(merged, path)
    return merged[merged["timestamp"] >= start].reset_index(drop=True)
