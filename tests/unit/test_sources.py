import ccxt
import pandas as pd
import pytest

from cryptocast.data.binance import SourceUnavailable
from cryptocast.data.sources import load_ohlcv, trim_history
from cryptocast.runconfig import apply_overrides
from tests.conftest import files_config, make_ohlcv, raw_config


class Offline:
    calls = 0

    def fetch_ohlcv(self, *args, **kwargs):
        Offline.calls += 1
        raise ccxt.NetworkError("getaddrinfo failed")


def _cfg(**over):
    raw = raw_config("hour")
    raw["data"]["history"] = 4200
    raw["data"]["cache_dir"] = "/tmp/cryptocast-test-cache"
    return apply_overrides(raw, **over)


def test_auto_falls_back_to_sample_without_retrying(caplog):
    Offline.calls = 0
    frame, info = load_ohlcv(_cfg(), exchange_factory=lambda name: Offline())
    assert info.fallback
    assert info.used == "sample"
    assert set(info.pairs) == {"BTC/USDT", "ETH/USDT"}  # each pair's span comes with it
    assert info.requested == "auto"
    assert Offline.calls == 1  # offline machines do not wait for backoff
    assert "FALLING BACK" in caplog.text
    assert set(frame["pair"]) == {"BTC/USDT", "ETH/USDT"}
    assert frame.groupby("pair").size().eq(4200).all()


def test_binance_source_never_falls_back():
    cfg = _cfg(source="binance")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"backoff_s": 0})})
    with pytest.raises(SourceUnavailable):
        load_ohlcv(cfg, exchange_factory=lambda name: Offline())


def test_strict_auto_never_falls_back():
    raw = raw_config("hour")
    raw["data"].update(strict=True, backoff_s=0, retries=1, cache_dir="/tmp/cryptocast-test-c")
    with pytest.raises(SourceUnavailable):
        load_ohlcv(apply_overrides(raw), exchange_factory=lambda name: Offline())


def test_sample_source_is_not_live():
    _frame, info = load_ohlcv(_cfg(source="sample"))
    assert not info.live
    assert not info.fallback


def test_trim_history_per_pair():
    df = pd.concat([make_ohlcv("BTC/USDT", periods=50), make_ohlcv("ETH/USDT", periods=30)])
    out = trim_history(df, 10, "1h")
    assert out.groupby("pair").size().to_dict() == {"BTC/USDT": 10, "ETH/USDT": 10}


def test_until_keeps_the_history_before_it(tmp_path, caplog):
    candles = make_ohlcv("BTC/USDT", periods=300)
    candles.to_csv(tmp_path / "btc.csv", index=False)
    until = candles["timestamp"].iloc[199]
    cfg = files_config(tmp_path, history=100, until=until.isoformat())
    caplog.set_level("INFO", "cryptocast.data.sources")
    frame, info = load_ohlcv(cfg)
    # a load that keeps fewer candles than the file holds says how many and why
    assert "files: BTC/USDT: 200 candles read, the last 100 kept (data.history: 100" in caplog.text
    assert frame["timestamp"].iloc[-1] == until
    assert len(frame) == 100  # the full history before the cut, not after it
    assert info.details["end"] == str(until)
    assert not info.live


def test_one_row_dated_in_the_future_gets_its_own_rule(tmp_path):
    from cryptocast.data.validation import DataValidationError, validate

    candles = make_ohlcv("BTC/USDT", periods=300)
    future = candles.iloc[[-1]].assign(timestamp=pd.Timestamp("2099-01-01", tz="UTC"))
    pd.concat([candles, future]).to_csv(tmp_path / "btc.csv", index=False)
    cfg = files_config(tmp_path, history=100)
    frame, _info = load_ohlcv(cfg)
    assert len(frame) == 101  # the real window is kept, and the row for the rule
    with pytest.raises(DataValidationError) as err:
        validate(frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    rules = {v.rule for v in err.value.report.violations}
    assert rules == {"future_timestamp"}
    assert "[future_timestamp] BTC/USDT: 1 x, first at 2099-01-01 00:00" in str(err.value)
