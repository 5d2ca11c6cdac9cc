"""One hand-made bad frame per rule; repairs are reported, violations stop everything."""

import numpy as np
import pandas as pd
import pytest

from cryptocast.config import ValidationSettings
from cryptocast.data.validation import DataValidationError, validate
from tests.conftest import make_ohlcv

CFG = ValidationSettings(
    min_history=50,
    max_fill_gap=3,
    max_abs_log_return=0.4,
    duplicate_rel_tolerance=1e-4,
    max_staleness="3h",
)


def run(df, pairs=("BTC/USDT",), **kw):
    return validate(df, CFG, freq="1h", pairs=list(pairs), **kw)


def violations(df, **kw):
    with pytest.raises(DataValidationError) as err:
        run(df, **kw)
    return {v.rule: v for v in err.value.report.violations}, str(err.value)


def test_clean_frame_passes_untouched():
    df = make_ohlcv(periods=100)
    clean, report = run(df)
    assert report.ok
    assert not report.repairs
    assert len(clean) == 100


def test_exact_duplicates_dropped():
    df = make_ohlcv(periods=100)
    df = pd.concat([df, df.iloc[[10, 20]]])
    clean, report = run(df)
    assert [r.rule for r in report.repairs] == ["exact_duplicates"]
    assert report.repairs[0].count == 2
    assert len(clean) == 100


def test_near_duplicates_merged_to_mean():
    df = make_ohlcv(periods=100)
    twin = df.iloc[[30]].copy()
    twin["close"] *= 1 + 5e-5
    twin["high"] = np.maximum(twin["high"], twin["close"])
    clean, report = run(pd.concat([df, twin]))
    rep = {r.rule: r for r in report.repairs}
    assert rep["near_duplicates"].count == 1
    merged = clean.loc[clean["timestamp"] == df["timestamp"].iloc[30], "close"].item()
    assert merged == pytest.approx((df["close"].iloc[30] + twin["close"].item()) / 2)


def test_conflicting_duplicates():
    df = make_ohlcv(periods=100)
    twin = df.iloc[[30]].copy()
    twin[["open", "high", "low", "close"]] *= 1.01
    rules, _msg = violations(pd.concat([df, twin]))
    assert rules["conflicting_duplicates"].first == [
        df["timestamp"].iloc[30].strftime("%Y-%m-%d %H:%M")
    ]


def test_short_gaps_filled_flat_and_flagged():
    df = make_ohlcv(periods=100).drop(index=[40, 41, 42])
    clean, report = run(df)
    rep = {r.rule: r for r in report.repairs}
    assert rep["short_gaps"].count == 3
    filled = clean.iloc[40:43]
    prev_close = clean["close"].iloc[39]
    assert (filled[["open", "high", "low", "close"]] == prev_close).all().all()
    assert (filled["volume"] == 0).all()


def test_long_gaps():
    rules, _ = violations(make_ohlcv(periods=100).drop(index=range(40, 45)))
    assert "longest 5 candles" in rules["long_gaps"].detail


def test_irregular_timestamps():
    df = make_ohlcv(periods=100)
    df.loc[50, "timestamp"] += pd.Timedelta("17min")
    rules, _ = violations(df)
    assert "irregular_timestamps" in rules


def test_missing_values():
    df = make_ohlcv(periods=100)
    df.loc[5, "close"] = np.nan
    assert "missing_values" in violations(df)[0]


def test_non_positive_price():
    df = make_ohlcv(periods=100)
    df.loc[7, "low"] = 0.0
    assert "non_positive_price" in violations(df)[0]


def test_ohlc_inconsistent():
    df = make_ohlcv(periods=100)
    df.loc[8, "high"] = df.loc[8, "low"] * 0.5
    assert "ohlc_inconsistent" in violations(df)[0]


def test_negative_volume():
    df = make_ohlcv(periods=100)
    df.loc[9, "volume"] = -1
    assert "negative_volume" in violations(df)[0]


def test_implausible_jump_bad_print():
    df = make_ohlcv(periods=100)
    df.loc[60, ["open", "high", "close"]] = df.loc[60, "close"] * 4  # a bad print
    rules, _ = violations(df)
    assert rules["implausible_jump"].count >= 1


def test_insufficient_history():
    rules, _ = violations(make_ohlcv(periods=20))
    assert "20 candles < min_history 50" in rules["insufficient_history"].detail


def test_missing_pair_is_insufficient_history():
    rules, _ = violations(make_ohlcv(periods=100), pairs=("BTC/USDT", "ETH/USDT"))
    assert rules["insufficient_history"].pair == "ETH/USDT"


def test_stale_data_only_for_live_sources():
    df = make_ohlcv(periods=100)
    now = df["timestamp"].iloc[-1] + pd.Timedelta("2D")
    run(df, live=False, now=now)  # historical data is never stale
    rules, _ = violations(df, live=True, now=now)
    assert "stale_data" in rules
    run(df, live=True, now=df["timestamp"].iloc[-1] + pd.Timedelta("2h"))


def test_every_violation_reported_at_once():
    df = make_ohlcv(periods=100)
    df.loc[7, "low"] = -1.0
    df.loc[9, "volume"] = -1
    df = df.drop(index=range(70, 80))
    rules, message = violations(df)
    assert {"non_positive_price", "negative_volume", "long_gaps"} <= set(rules)
    for rule in rules:
        assert f"[{rule}] BTC/USDT" in message
    assert "Nothing was trained or deployed" in message


def test_dropping_more_than_a_few_rows_is_said_loudly():
    df = make_ohlcv(periods=100)
    _, quiet = run(pd.concat([df, df.iloc[[10, 20]]]))
    assert "WARNING" not in quiet.format()
    _, report = run(pd.concat([df, df.iloc[10:20]]))
    assert "WARNING BTC/USDT: 10 of 110 loaded rows were dropped" in report.format()
