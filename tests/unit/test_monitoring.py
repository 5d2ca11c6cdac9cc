import numpy as np
import pandas as pd
import pytest

from cryptocast.config import MonitoringSettings
from cryptocast.modeling.plots import live_forecasts
from cryptocast.observability.monitoring import (
    drift,
    features,
    live_accuracy,
    psi,
    retrain_decision,
    scored_forecasts,
)
from tests.conftest import make_ohlcv, raw_config

# the shipped hourly thresholds (PSI 0.2, KS p 0.01, share 0.5, 24 recent candles)
SHIPPED = MonitoringSettings.model_validate(raw_config("hour")["monitoring"])


def test_psi_by_hand_and_properties():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert psi(ref, rng.normal(size=5000)) < 0.02  # same distribution
    assert psi(ref, rng.normal(loc=1.0, size=5000)) > 0.2  # shifted
    # two bins by hand: reference halves at the median; recent 80% / 20%
    ref2 = np.array([0.0] * 50 + [1.0] * 50)
    recent = np.array([0.0] * 80 + [1.0] * 20)
    edges_psi = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(ref2, recent, bins=2) == pytest.approx(edges_psi, rel=1e-3)
    with pytest.raises(ValueError, match="PSI needs"):
        psi(np.array([1.0]), recent)


def test_features_per_pair():
    f = features(pd.concat([make_ohlcv("BTC/USDT", 10), make_ohlcv("ETH/USDT", 5)]))
    assert f.groupby("pair").size().to_dict() == {"BTC/USDT": 9, "ETH/USDT": 4}
    assert np.isfinite(f["log_return"]).all()


def test_drift_detects_a_shifted_distribution():
    ref = make_ohlcv("BTC/USDT", 1000, seed=1)
    same = make_ohlcv("BTC/USDT", 300, start="2024-03-01", seed=2)
    calm = drift(ref, same, **SHIPPED.drift_limits())
    assert not calm["drifted"].any()
    wild = same.copy()
    rng = np.random.default_rng(3)
    wild["close"] = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, len(wild))))  # 5x volatility
    wild["volume"] *= 20
    hot = drift(ref, wild, **SHIPPED.drift_limits())
    assert hot["drifted"].all()
    assert set(hot["feature"]) == {"log_return", "log_volume"}
    # too few recent candles: not judged (no rows), rather than judged on noise
    assert drift(
        ref, wild.head(10), **(SHIPPED.drift_limits() | {"min_recent": 10})
    ).empty  # 9 returns
    assert len(drift(ref, wild.head(11), **(SHIPPED.drift_limits() | {"min_recent": 10}))) == 2


def test_live_accuracy_by_hand():
    actual = make_ohlcv("BTC/USDT", 10)
    t = actual["timestamp"]
    stored = pd.DataFrame(
        {
            "pair": "BTC/USDT",
            "target_time": [t[5], t[6], t[50 % 10]],
            "forecast": [actual["close"][5] + 1, actual["close"][6] - 3, actual["close"][0]],
            "lower": [0, 0, 0],
            "upper": [1e9, 0.0, 1e9],
        }
    )
    acc = live_accuracy(scored_forecasts(stored, actual), actual).set_index("pair").loc["BTC/USDT"]
    assert acc["n"] == 3
    assert acc["mae"] == pytest.approx((1 + 3 + 0) / 3)
    scale = np.abs(np.diff(actual["close"])).mean()
    assert acc["mase"] == pytest.approx((4 / 3) / scale)
    assert acc["coverage"] == pytest.approx(2 / 3)


def test_scored_forecasts_keep_only_what_happened_and_plot(tmp_path):
    actual = make_ohlcv("BTC/USDT", 10)
    t = actual["timestamp"]
    future = t.iloc[-1] + pd.Timedelta(hours=1)
    stored = pd.DataFrame(
        {
            "pair": "BTC/USDT",
            "origin": t[4],
            "target_time": [t[5], t[6], future],
            "forecast": [1.0, 2.0, 3.0],
            "lower": [0.5, 1.5, 2.5],
            "upper": [1.5, 2.5, 3.5],
        }
    )
    scored = scored_forecasts(stored, actual)
    assert list(scored["target_time"]) == [t[5], t[6]]  # the future one is not scored yet
    assert list(scored_forecasts(stored, actual, last=1)["target_time"]) == [t[6]]
    assert list(scored["close"]) == [actual["close"][5], actual["close"][6]]
    png = live_forecasts(scored, "BTC/USDT", tmp_path / "live.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_decision_names_what_crossed_its_threshold():
    acc = pd.DataFrame({"pair": ["BTC/USDT", "ETH/USDT"], "n": [30, 5], "mase": [3.0, 9.0]})
    calm = pd.DataFrame({"pair": ["BTC/USDT"] * 2, "feature": ["a", "b"], "drifted": [False, True]})
    th = SHIPPED.model_copy(update={"max_live_mase": 2.5}).decision_limits()
    d = retrain_decision(acc, calm, **th)
    assert d.action == "retrain"
    assert d.reasons == [
        "BTC/USDT: live MASE 3.000 > 2.5 over 30 forecasts",
        "drift share 0.50 >= 0.5 (BTC/USDT:b)",
    ]
    ok = retrain_decision(acc.assign(mase=[1.0, 9.0]), calm.assign(drifted=False), **th)
    assert ok.action == "ok"  # ETH's 9.0 is over only 5 forecasts: not judged yet
    assert ok.drift_share == 0.0
    assert ok.reasons == ["live accuracy within thresholds", "drift within thresholds"]


def test_an_ok_on_nothing_says_nothing_was_judged():
    th = SHIPPED.decision_limits()
    few = pd.DataFrame({"pair": ["BTC/USDT"], "n": [th["min_scored"] - 1], "mase": [9.0]})
    none = pd.DataFrame(columns=["pair", "feature", "drifted"])
    d = retrain_decision(few, none, **th)
    assert d.action == "ok"
    assert d.reasons == [
        f"live accuracy not judged yet: no pair has {th['min_scored']} scored forecasts",
        "drift not checked: too few candles before or after the champion's origin to compare",
    ]


def test_live_figures_round_trip_through_their_metric_names():
    from cryptocast.observability.monitoring import live_from_metrics, live_metric_name

    logged = {live_metric_name("live_mase", "BTC/USDT"): 1.5, "drift_share": 0.5}
    logged[live_metric_name("live_coverage", "BTC/USDT")] = 0.8
    assert live_metric_name("live_mase", "BTC/USDT") == "live_mase.BTC-USDT"
    assert live_from_metrics(logged, ["BTC/USDT", "ETH/USDT"]) == {
        "BTC/USDT": {"live_mase": 1.5, "live_coverage": 0.8}  # ETH: nothing logged, left out
    }
    assert live_from_metrics(logged, ["BTC/USDT"], ("live_mase",)) == {
        "BTC/USDT": {"live_mase": 1.5}
    }


def test_synthetic_candles_do_not_judge_a_champion_of_market_data():
    """Offline, `make monitor` (DATA=auto fell back to sample candles) judged a champion
    trained on the real files against synthetic candles and said OK, "no recent candles"."""
    from cryptocast.contracts import Provenance, SourceInfo
    from cryptocast.observability.monitoring import NothingToJudge, judgeable

    real = Provenance(kind="files", fallback=False)
    fallback = SourceInfo(requested="auto", used="sample", fallback=True)
    with pytest.raises(NothingToJudge, match=r"synthetic sample data \(DATA=auto fell back"):
        judgeable(real, "2", fallback)
    judgeable(Provenance(kind="sample", fallback=True), "1", fallback)  # like with like
    judgeable(real, "2", SourceInfo(requested="files", used="files"))
    judgeable(None, "1", fallback)  # an old bundle without provenance: judged as before
    what_if = SourceInfo(requested="files", used="files", details={"scenario": {"after": "x"}})
    judgeable(real, "2", what_if)  # shift-data's what-if candles are meant to be judged
