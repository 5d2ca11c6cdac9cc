from pathlib import Path

import ccxt
import pandas as pd
import pytest

from cryptocast.data import binance
from cryptocast.data.binance import SourceUnavailable, ccxt_timeframe, fetch_range, load_cached

H = 3_600_000
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").timestamp() * 1000)


class FakeExchange:
    """ccxt-like: serves hourly candles from T0 up to `now`, `limit` per call; can fail."""

    def __init__(self, now_ms: int, failures: int = 0, error=ccxt.NetworkError):
        self.now_ms, self.failures, self.error = now_ms, failures, error
        self.calls: list[tuple[int, int]] = []

    def fetch_ohlcv(self, symbol, timeframe, since, limit):
        assert timeframe == "1h"
        if self.failures:
            self.failures -= 1
            raise self.error("boom")
        self.calls.append((since, limit))
        out = []
        t = max(since, T0)
        while t <= self.now_ms and len(out) < limit:  # includes the still-open candle
            price = 100 + (t - T0) / H
            out.append([t, price, price + 1, price - 1, price + 0.5, 10.0])
            t += H
        return out


@pytest.mark.parametrize(("freq", "timeframe"), [("1h", "1h"), ("1D", "1d"), ("15min", "15m")])
def test_timeframes(freq, timeframe):
    assert ccxt_timeframe(freq) == timeframe


def test_pagination_and_open_candle_dropped():
    now = pd.Timestamp("2024-01-02 10:30", tz="UTC")
    ex = FakeExchange(int(now.timestamp() * 1000))
    df = fetch_range(
        ex,
        "BTC/USDT",
        freq="1h",
        since=pd.Timestamp("2024-01-01", tz="UTC"),
        until=now.floor("1h"),
        page_limit=10,
    )
    assert len(df) == 34  # 00:00 day 1 .. 09:00 day 2; the 10:00 candle is still open
    assert df["timestamp"].iloc[-1] == pd.Timestamp("2024-01-02 09:00", tz="UTC")
    assert len(ex.calls) == 4  # 10 + 10 + 10 + 4
    assert df["timestamp"].diff().dropna().eq(pd.Timedelta("1h")).all()


def test_retries_with_backoff_then_succeeds():
    now = pd.Timestamp("2024-01-01 05:00", tz="UTC")
    ex = FakeExchange(int(now.timestamp() * 1000), failures=2, error=ccxt.RateLimitExceeded)
    sleeps: list[float] = []
    df = fetch_range(
        ex,
        "BTC/USDT",
        freq="1h",
        since=pd.Timestamp("2024-01-01", tz="UTC"),
        until=now,
        retries=3,
        backoff_s=0.5,
        sleep=sleeps.append,
    )
    assert sleeps == [0.5, 1.0]
    assert len(df) == 5


@pytest.mark.parametrize(
    ("error", "failures", "raised", "match"),
    [
        (ccxt.NetworkError, 10, SourceUnavailable, "3 attempts"),  # retried, then given up
        (ccxt.BadSymbol, 1, ccxt.BadSymbol, "boom"),  # not a network error: not retried
    ],
    ids=["gives-up-after-retries", "non-network-error-not-retried"],
)
def test_failures(error, failures, raised, match):
    ex = FakeExchange(T0 + 10 * H, failures=failures, error=error)
    with pytest.raises(raised, match=match):
        fetch_range(
            ex,
            "BTC/USDT",
            freq="1h",
            since=pd.Timestamp("2024-01-01", tz="UTC"),
            until=pd.Timestamp("2024-01-01 05:00", tz="UTC"),
            retries=2,
            backoff_s=0,
            sleep=lambda s: None,
        )
    assert ex.calls == []  # no page was fetched


def test_cache_is_refreshed_incrementally(tmp_path: Path):
    now1 = pd.Timestamp("2024-01-02 00:00", tz="UTC")
    ex = FakeExchange(int(now1.timestamp() * 1000))
    first = load_cached(ex, "BTC/USDT", freq="1h", history=20, cache_dir=tmp_path, now=now1)
    assert len(first) == 20
    path = binance.cache_path(tmp_path, "binance", "BTC/USDT", "1h")
    assert path.exists()
    # three hours later only the three new closed candles are requested
    now2 = now1 + pd.Timedelta("3h")
    ex.now_ms = int(now2.timestamp() * 1000)
    ex.calls.clear()
    second = load_cached(ex, "BTC/USDT", freq="1h", history=20, cache_dir=tmp_path, now=now2)
    assert ex.calls[0][0] == int(now1.timestamp() * 1000)  # since = first uncached candle
    assert len(second) == 20
    assert second["timestamp"].iloc[-1] == now2 - pd.Timedelta("1h")
    assert len(pd.read_parquet(path)) == 23
