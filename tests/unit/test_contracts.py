import pandas as pd
import pytest

from cryptocast.contracts import ContractError, forecast_frame, pair_slug, to_ohlcv
from tests.conftest import make_ohlcv


def test_to_ohlcv_normalises_types_and_order():
    df = make_ohlcv(periods=5).iloc[::-1]
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    df["close"] = df["close"].astype(str)
    out = to_ohlcv(df)
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["close"].dtype == "float64"
    assert out["timestamp"].is_monotonic_increasing


def test_naive_timestamps_are_rejected():
    df = make_ohlcv(periods=3)
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)
    with pytest.raises(ContractError, match="timezone-aware"):
        to_ohlcv(df)


def test_missing_columns_named():
    with pytest.raises(ContractError, match="volume"):
        to_ohlcv(make_ohlcv(periods=3).drop(columns="volume"))


def test_forecast_frame_and_slug():
    f = forecast_frame(
        [
            {
                "pair": "BTC/USDT",
                "origin": "2023-12-31T23:00:00Z",
                "target_time": "2024-01-01T00:00:00Z",
                "step": 1,
                "forecast": 1.0,
                "lower": 0.9,
                "upper": 1.1,
                "model_version": "1",
            }
        ]
    )
    assert list(f.columns)[:4] == ["pair", "origin", "target_time", "step"]
    assert f["target_time"].dt.tz is not None
    assert f["origin"].dt.tz is not None
    assert pair_slug("BTC/USDT") == "BTC-USDT"
    assert isinstance(f["target_time"].iloc[0], pd.Timestamp)


def test_release_records_read_as_lines():
    from cryptocast.contracts import ReconcileRecord, ReleaseRecord

    r = ReleaseRecord(event="rollback", version="1", previous="2", url="http://x/invocations",
                      seconds_to_answer=1.23, seconds_total=4.5, forecast_rows=48,
                      retired_servers=["2"])  # fmt: skip
    assert r.lines("m") == [
        "rollback: m v1 is champion (previous: v2)",
        "  answering at http://x/invocations, 1.2s after the start (4.5s in all)",
        "  forecasts stored: 48 rows; older servers stopped: v2",
    ]
    assert ReconcileRecord(champion="3", url="u").lines("m")[0] == "serve: m v3 answering at u"


def test_a_version_in_words():
    from cryptocast.contracts import BASELINE_LABEL, served_model, version_label

    assert served_model("naive", "naive") == BASELINE_LABEL
    assert version_label({"BTC/USDT": BASELINE_LABEL, "ETH/USDT": BASELINE_LABEL}) == BASELINE_LABEL
    assert (
        version_label({"ETH/USDT": BASELINE_LABEL, "BTC/USDT": served_model("lgbm", "lightgbm")})
        == "BTC/USDT lgbm, ETH/USDT random walk"
    )
