import numpy as np
import pandas as pd
import pytest

from cryptocast.modeling.candidates import CANDIDATES
from cryptocast.modeling.forecasting import Forecaster, past_covariates


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


def _pair_of(close):
    rng = np.random.default_rng(5)
    other = close * np.exp(rng.normal(0, 0.02, len(close))).cumprod() * 30
    volumes = {
        "A/USDT": pd.Series(rng.lognormal(3, 1, len(close)), index=close.index),
        "B/USDT": pd.Series(rng.lognormal(5, 1, len(close)), index=close.index),
    }
    return {"A/USDT": close, "B/USDT": other}, volumes


def test_past_covariates_are_volume_change_and_the_other_pairs_returns(close):
    closes, volumes = _pair_of(close)
    cov = past_covariates(closes, volumes, "A/USDT", ["B/USDT"])
    assert list(cov.columns) == ["volume", "return B/USDT"]
    assert cov.index.equals(close.index)
    assert cov.iloc[0].tolist() == [0.0, 0.0]  # no change before the first candle
    b = closes["B/USDT"]
    assert cov["return B/USDT"].iloc[5] == pytest.approx(np.log(b.iloc[5] / b.iloc[4]))
    v = volumes["A/USDT"]
    assert cov["volume"].iloc[5] == pytest.approx(np.log1p(v.iloc[5]) - np.log1p(v.iloc[4]))
    # another pair's candle that is missing (or not known yet) carries no news
    gappy = past_covariates(closes | {"B/USDT": b.drop(b.index[10])}, volumes, "A/USDT", ["B/USDT"])
    assert gappy["return B/USDT"].iloc[10] == 0.0
    assert gappy.notna().all().all()
    with pytest.raises(ValueError, match="need the candles of"):
        past_covariates({"A/USDT": close}, volumes, "A/USDT", ["B/USDT"])


def test_global_model_with_past_covariates_uses_them(close, tmp_path):
    closes, volumes = _pair_of(close)
    params = {"lags": 12, "lags_past_covariates": 6, "n_estimators": 30}
    fitted = Forecaster.fit_many(
        "g", "lightgbm_global", params, 6, 1, {p: c.iloc[:-48] for p, c in closes.items()}, volumes
    )
    a = fitted["A/USDT"]
    assert a.covariates == ("B/USDT",)
    assert fitted["B/USDT"].covariates == ("A/USDT",)
    cov = a.covariate_frame("A/USDT", closes, volumes)
    path = a.predict(close, covariates=cov)
    assert path.shape == (6,)
    assert np.isfinite(path).all()
    with pytest.raises(ValueError, match="needs its past covariates"):
        a.predict(close)
    # other news -> another forecast: the covariates reach the model
    moved = cov.assign(**{"return B/USDT": cov["return B/USDT"] * -3})
    assert not np.allclose(a.predict(close, covariates=moved), path)
    bt = a.backtest(close, window=48, stride=6, covariates=cov)
    assert len(bt) == 48
    loaded = Forecaster.load(a.save(tmp_path / "a.zip"))
    assert loaded.covariates == ("B/USDT",)
    np.testing.assert_allclose(loaded.predict(close, covariates=cov), path, rtol=1e-9)


def test_torch_training_stops_early_on_held_out_candles(close):
    params = {"input_chunk_length": 24, "n_epochs": 30, "validation": 96, "patience": 1}
    fc = Forecaster.build("n", "nhits", params, 6, 42).fit(close)
    # a random walk: the held-out loss stops improving long before the cap
    assert 1 <= fc.model.epochs_trained < 30
    with pytest.raises(ValueError, match="cannot hold out 580"):
        Forecaster.build("n", "nhits", params | {"validation": 580}, 6, 42).fit(close)


def test_loading_a_model_leaves_no_files_behind(close, tmp_path, monkeypatch):
    # model servers are stopped by signals, which skip finalisers: nothing may wait for one
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    fc = Forecaster.build("n", "nhits", FAST["nhits"], 6, 42).fit(close)
    saved = fc.save(tmp_path / "n.zip")
    loaded = Forecaster.load(saved)
    assert list((tmp_path / "tmp").iterdir()) == []
    np.testing.assert_allclose(loaded.predict(close), fc.predict(close), rtol=1e-6)
