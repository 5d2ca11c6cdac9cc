import numpy as np
import pandas as pd
import pytest

from cryptocast.forecasting import CANDIDATES, Forecaster


@pytest.fixture(scope="module")
def close():
    rng = np.random.default_rng(1)
    idx = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))), index=idx)


FAST = {
    "naive": {},
    "drift": {},
    "lightgbm": {"lags": 12, "n_estimators": 20},
    "nhits": {"input_chunk_length": 24, "n_epochs": 1},
    "tide": {"input_chunk_length": 24, "n_epochs": 1},
}


def test_registry_has_the_required_families():
    assert {"naive", "drift", "lightgbm", "nhits"} <= set(CANDIDATES)


def test_unknown_kind():
    with pytest.raises(KeyError, match="known"):
        Forecaster.build("x", "prophet", {}, 6, 0)


@pytest.mark.parametrize("kind", sorted(FAST))
def test_fit_predict_backtest_and_round_trip(kind, close, tmp_path):
    fc = Forecaster.build(kind, kind, FAST[kind], 6, 42).fit(close.iloc[:-48])
    path = fc.predict(close.iloc[:-48])
    assert path.shape == (6,)
    assert np.isfinite(path).all()
    assert (path > 0).all()
    bt = fc.backtest(close, window=48, stride=6)
    assert bt["origin"].nunique() == 8
    assert len(bt) == 48
    # a forecast only uses candles before its origin
    assert (bt["target_time"] > bt["origin"]).all()
    assert bt["actual"].tolist() == close.iloc[-48:].tolist()
    # saving a *loaded* model again keeps its weights (Darts drops torch checkpoints)
    again = Forecaster.load(Forecaster.load(fc.save(tmp_path / "a.zip")).save(tmp_path / "b.zip"))
    np.testing.assert_allclose(again.predict(close.iloc[:-48]), path, rtol=1e-6)


def test_naive_backtest_is_the_last_close(close):
    fc = Forecaster.build("naive", "naive", {}, 4, 0).fit(close.iloc[:-20])
    bt = fc.backtest(close, window=20, stride=4)
    last_close = close.reindex(bt["origin"]).to_numpy()
    np.testing.assert_allclose(bt["forecast"], last_close)


def test_multi_series_model_is_fitted_once_on_every_pair(close, tmp_path):
    other = close * np.exp(np.random.default_rng(5).normal(0, 0.02, len(close))).cumprod() * 30
    closes = {"A/USDT": close.iloc[:-48], "B/USDT": other.iloc[:-48]}
    fitted = Forecaster.fit_many("g", "lightgbm_global", {"lags": 12, "n_estimators": 20}, 6, 1,
                                 closes)  # fmt: skip
    a, b = fitted["A/USDT"], fitted["B/USDT"]
    assert a.model is b.model  # one model ...
    assert a.state != b.state  # ... each pair standardised by its own returns
    assert Forecaster.multi_series("lightgbm_global")
    assert not Forecaster.multi_series("lightgbm")
    # the calendar covariates are computed from the index at predict time: any history works
    path = b.predict(other)
    assert path.shape == (6,)
    assert np.isfinite(path).all()
    assert len(b.backtest(other, window=48, stride=6)) == 48
    loaded = Forecaster.load(b.save(tmp_path / "b.zip"))
    np.testing.assert_allclose(loaded.predict(other), path, rtol=1e-9)
