import numpy as np
import pandas as pd

from cryptocast.data.sample import synthetic_candles

END = pd.Timestamp("2026-11-01", tz="UTC")


def test_deterministic_and_pair_specific():
    a = synthetic_candles("BTC/USDT", periods=500, end=END, freq="1h", seed=7)
    b = synthetic_candles("BTC/USDT", periods=500, end=END, freq="1h", seed=7)
    c = synthetic_candles("ETH/USDT", periods=500, end=END, freq="1h", seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["close"], c["close"])


def test_valid_ohlc_and_regular_grid():
    df = synthetic_candles("BTC/USDT", periods=2000, end=END, freq="1D", seed=1)
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df[["open", "high", "low", "close", "volume"]] > 0).all().all()
    assert df["timestamp"].diff().dropna().eq(pd.Timedelta("1D")).all()
    assert df["timestamp"].iloc[-1] == END


def test_heavy_tails_and_volatility_clustering():
    df = synthetic_candles("BTC/USDT", periods=8000, end=END, freq="1h", seed=3)
    r = np.diff(np.log(df["close"].to_numpy()))
    z = (r - r.mean()) / r.std()
    assert np.mean(z**4) > 4  # excess kurtosis: heavier tails than a normal (3)
    sq = r**2
    assert np.corrcoef(sq[:-1], sq[1:])[0, 1] > 0.05  # squared returns cluster
