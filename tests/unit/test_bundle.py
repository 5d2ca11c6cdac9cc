import json

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from cryptocast.contracts import Manifest, PairEntry, RequestError
from cryptocast.modeling.forecasting import Forecaster
from cryptocast.serving.bundle import load_bundle, publish, staging_dir, write_bundle
from cryptocast.serving.model import CryptocastModel, parse_requests

MANIFEST = {
    "granularity": "hour",
    "freq": "1h",
    "horizon": 6,
    "interval": 0.8,
    "interval_lookback": 48,
    "model_version": "7",
}


@pytest.fixture(scope="module")
def histories():
    rng = np.random.default_rng(2)
    idx = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    return {
        p: pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300))), index=idx)
        for p in ("BTC/USDT", "ETH/USDT")
    }


def _write(path, histories, version="7"):
    fcs = {p: Forecaster.build("drift", "drift", {}, 6, 0).fit(h) for p, h in histories.items()}
    return write_bundle(path, fcs, histories, Manifest(**MANIFEST | {"model_version": version}))


def test_one_file_per_pair_plus_manifest(tmp_path, histories):
    d = _write(tmp_path / "b", histories)
    assert sorted(p.name for p in d.iterdir()) == ["BTC-USDT.zip", "ETH-USDT.zip", "manifest.json"]
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["pairs"]["BTC/USDT"]["candidate"] == "drift"
    bundle = load_bundle(d)
    assert bundle.pairs == ["BTC/USDT", "ETH/USDT"]
    pd.testing.assert_series_equal(
        bundle.histories["ETH/USDT"], histories["ETH/USDT"], check_names=False, check_freq=False
    )


def test_forecast_frame_contract(tmp_path, histories):
    bundle = load_bundle(_write(tmp_path / "b", histories))
    f = bundle.forecast("BTC/USDT", 3)
    assert list(f["step"]) == [1, 2, 3]
    assert f["target_time"].iloc[0] == histories["BTC/USDT"].index[-1] + pd.Timedelta("1h")
    assert (f["lower"] < f["forecast"]).all()
    assert (f["forecast"] < f["upper"]).all()
    assert set(f["model_version"]) == {"7"}
    with pytest.raises(ValueError, match="exceeds the maximum 6"):
        bundle.forecast("BTC/USDT", 7)
    with pytest.raises(RequestError, match="serves"):
        bundle.forecast("DOGE/USDT")
    assert (f["origin"] == histories["BTC/USDT"].index[-1]).all()


def test_publish_swaps_and_heals_an_interrupted_swap(tmp_path, histories):
    final = tmp_path / "hour_models"
    _write(final, histories, "1")
    staged = _write(staging_dir(final), histories, "2")
    publish(staged, final)
    assert load_bundle(final).manifest.model_version == "2"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".hour_models.old")) == []
    # a crash between the two renames: final missing, backup present -> healed on read
    final.rename(tmp_path / ".hour_models.old")
    assert load_bundle(final).manifest.model_version == "2"


class _Ctx:
    def __init__(self, path, version):
        self.artifacts = {"bundle": str(path)}
        self.model_config = {"model_version": version}


def test_pyfunc_answers_and_rejects_bad_requests(tmp_path, histories):
    model = CryptocastModel()
    model.load_context(_Ctx(_write(tmp_path / "b", histories), "12"))
    out = model.predict(
        None, pd.DataFrame([{"pair": "BTC/USDT", "horizon": 2}, {"pair": "ETH/USDT"}])
    )
    assert out.groupby("pair").size().to_dict() == {"BTC/USDT": 2, "ETH/USDT": 6}
    assert set(out["model_version"]) == {"12"}
    assert out["target_time"].iloc[0].endswith("Z")
    for bad, msg in [
        ({"pair": "DOGE/USDT"}, "unknown pair"),
        ({"pair": "BTC/USDT", "horizon": 99}, "exceeds"),
        ({"pair": "BTC/USDT", "horizon": 0}, "positive integer"),
    ]:
        with pytest.raises(MlflowException, match=msg) as err:
            model.predict(None, pd.DataFrame([bad]))
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_parse_requests():
    assert parse_requests(pd.DataFrame([{"pair": "BTC/USDT", "horizon": 3.0}])) == [
        ("BTC/USDT", 3, None)
    ]
    with pytest.raises(RequestError, match="'pair'"):
        parse_requests(pd.DataFrame([{"horizon": 3}]))


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([{"pair": "BTC/USDT", "horizon": float("inf")}], "positive integer, got inf"),
        ([{"pair": "BTC/USDT", "horizon": "abc"}], "positive integer, got 'abc'"),
        ([{"pair": "BTC/USDT", "horizon": 2.5}], "positive integer, got 2.5"),
        ([{"pair": "BTC/USDT"}] * 4, "4 records in one request; at most 3"),
        (
            [{"pair": "BTC/USDT", "candles": "[" + ",".join(['{"close": 1}'] * 6) + "]"}],
            "6 candles; at most 5",
        ),
    ],
    ids=["infinite-horizon", "text-horizon", "fractional-horizon", "records", "candles"],
)
def test_a_model_server_reached_directly_has_the_front_doors_limits(rows, says):
    """Infinity made the server fail (HTTP 500), and 20,000 records took 22.6 s of CPU."""
    with pytest.raises(RequestError, match=says):
        parse_requests(pd.DataFrame(rows), {"max_records": 3, "max_candles": 5})


def _candles(history, n=3, start_offset=1, jump=1.0):
    """n OHLCV records continuing ``history`` (start_offset=1: right after its end)."""
    last = history.iloc[-1]
    rows = []
    for k in range(n):
        ts = history.index[-1] + pd.Timedelta(hours=start_offset + k)
        close = last * jump * (1 + 0.001 * (k + 1))
        rows.append(
            {
                "timestamp": ts.isoformat(),
                "open": close,
                "high": close * 1.001,
                "low": close * 0.999,
                "close": close,
                "volume": 1.0,
            }
        )
    return rows


def test_forecast_from_recent_candles(tmp_path, histories):
    bundle = load_bundle(_write(tmp_path / "b", histories))
    hist = histories["BTC/USDT"]
    f = bundle.forecast("BTC/USDT", 2, pd.DataFrame(_candles(hist)))
    assert f["origin"].iloc[0] == hist.index[-1] + pd.Timedelta(hours=3)
    # overlapping candles replace stored ones; the forecast starts after the last given
    f = bundle.forecast("BTC/USDT", 2, pd.DataFrame(_candles(hist, start_offset=-1)))
    assert f["origin"].iloc[0] == hist.index[-1] + pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c[:1] + c[2:], "long_gaps"),
        (lambda c: [{**r, "low": -1.0} for r in c], "non_positive_price"),
        (lambda c: [{k: v for k, v in r.items() if k != "volume"} for r in c], "volume"),
        (lambda c: [{**r, "timestamp": "yesterday-ish"} for r in c], "candles"),
        (lambda c: [], "empty"),
    ],
)
def test_malformed_candles_are_request_errors(tmp_path, histories, mutate, message):
    bundle = load_bundle(_write(tmp_path / "b", histories))
    candles = pd.DataFrame(mutate(_candles(histories["BTC/USDT"])))
    with pytest.raises(RequestError, match=message):
        bundle.forecast("BTC/USDT", 2, candles)


def test_candles_must_continue_the_history(tmp_path, histories):
    bundle = load_bundle(_write(tmp_path / "b", histories))
    with pytest.raises(RequestError, match="continue"):
        bundle.forecast(
            "BTC/USDT", 2, pd.DataFrame(_candles(histories["BTC/USDT"], start_offset=5))
        )


def test_candles_must_join_the_history_plausibly(tmp_path, histories):
    """Each candle was valid on its own, so a doubled price (or candles half an hour off
    the grid) used to be forecast from as if it continued the history."""
    bundle = load_bundle(_write(tmp_path / "b", histories))
    hist = histories["BTC/USDT"]
    with pytest.raises(RequestError, match="do not join the model's history plausibly"):
        bundle.forecast("BTC/USDT", 2, pd.DataFrame(_candles(hist, jump=2.0)))
    shift = pd.Timedelta(minutes=30)
    off = [
        {**r, "timestamp": (pd.Timestamp(r["timestamp"]) - shift).isoformat()}
        for r in _candles(hist)
    ]
    with pytest.raises(RequestError, match="off the model's 1h grid"):
        bundle.forecast("BTC/USDT", 2, pd.DataFrame(off))
    assert len(bundle.forecast("BTC/USDT", 2, pd.DataFrame(_candles(hist, jump=1.05)))) == 2


def test_pyfunc_serves_cached_and_conditioned_forecasts(tmp_path, histories):
    import json as _json

    model = CryptocastModel()
    model.load_context(_Ctx(_write(tmp_path / "b", histories), "3"))
    cached = model.predict(None, pd.DataFrame([{"pair": "ETH/USDT", "horizon": 4}]))
    fresh = load_bundle(tmp_path / "b").forecast("ETH/USDT", 4)
    np.testing.assert_allclose(cached["forecast"], fresh["forecast"])
    req = pd.DataFrame(
        [
            {
                "pair": "ETH/USDT",
                "horizon": 2,
                "candles": _json.dumps(_candles(histories["ETH/USDT"])),
            }
        ]
    )
    out = model.predict(None, req)
    assert out["origin"].iloc[0] != cached["origin"].iloc[0]
    with pytest.raises(MlflowException, match="JSON list"):
        model.predict(None, pd.DataFrame([{"pair": "ETH/USDT", "candles": "{not json"}]))


SERVER_LOAD = """
import os, sys
import pandas as pd
from mlflow.pyfunc.scoring_server import _SERVER_MODEL_PATH
from cryptocast.serving.model import CryptocastModel

os.environ[_SERVER_MODEL_PATH] = "as in a scoring server"
class Ctx:
    artifacts = {"bundle": sys.argv[1]}
    model_config = {"model_version": "3"}
model = CryptocastModel()
model.load_context(Ctx())
model.predict(None, pd.DataFrame([{"pair": "BTC/USDT"}]))
"""


def test_served_bundle_without_model_name_still_loads_and_counts(tmp_path, histories):
    """A bundle whose manifest has no model_name (``make bench``'s plain one) broke the
    server's load_context once service metrics were added."""
    import os
    import subprocess
    import sys

    from prometheus_client import generate_latest

    from cryptocast.observability import exporter
    from cryptocast.observability.telemetry import METRICS_DIR_ENV
    from tests.conftest import ROOT

    bundle = _write(tmp_path / "b", histories)
    env = os.environ | {METRICS_DIR_ENV: str(tmp_path / "metrics"), "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", SERVER_LOAD, str(bundle)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = generate_latest(exporter.registry(list, tmp_path / "metrics")).decode()
    assert (
        'cryptocast_requests_total{granularity="hour",model="unregistered",model_version="3"} 1.0'
        in text
    )


def test_calibrated_bundle_serves_quantiles_and_an_old_one_its_gaussian_band(tmp_path, histories):
    from cryptocast.modeling import uncertainty

    steps = np.arange(1, 7)
    table = {"0.05": [-1.6] * 6, "0.1": [-1.2] * 6, "0.5": [0.0] * 6, "0.9": [1.3] * 6,
             "0.95": [1.7] * 6}  # fmt: skip
    fcs = {p: Forecaster.build("drift", "drift", {}, 6, 0).fit(h) for p, h in histories.items()}
    manifest = Manifest(
        **MANIFEST,
        volatility_halflife=24,
        pairs={p: PairEntry(calibration=table) for p in histories},
    )
    new = load_bundle(write_bundle(tmp_path / "new", fcs, histories, manifest))
    f = new.forecast("BTC/USDT")
    q = [json.loads(x) for x in f["quantiles"]]
    assert list(q[0]) == ["0.05", "0.1", "0.5", "0.9", "0.95"]
    np.testing.assert_allclose(f["lower"], [x["0.1"] for x in q])
    np.testing.assert_allclose(f["upper"], [x["0.9"] for x in q])
    sigma = uncertainty.ewma_volatility(histories["BTC/USDT"], 24).iloc[-1]
    expected = f["forecast"] * np.exp(1.3 * sigma * np.sqrt(steps))
    np.testing.assert_allclose(f["upper"], expected)

    old = load_bundle(_write(tmp_path / "old", histories))  # no calibration: before it
    g = old.forecast("BTC/USDT")
    assert set(g["quantiles"]) == {"{}"}
    sigma = uncertainty.volatility(histories["BTC/USDT"], 48).iloc[-1]
    lo, hi = uncertainty.gaussian_band(g["forecast"], uncertainty.spread(sigma, steps), 0.8)
    np.testing.assert_allclose(g["lower"], lo)
    np.testing.assert_allclose(g["upper"], hi)


def test_a_model_with_past_covariates_is_served_from_the_bundle(tmp_path, histories):
    rng = np.random.default_rng(3)
    volumes = {
        p: pd.Series(rng.lognormal(4, 1, len(h)), index=h.index) for p, h in histories.items()
    }
    params = {"lags": 12, "lags_past_covariates": 6, "n_estimators": 20}
    fcs = Forecaster.fit_many("g", "lightgbm_global", params, 6, 0, histories, volumes)
    d = write_bundle(tmp_path / "b", fcs, histories, Manifest(**MANIFEST), volumes)
    bundle = load_bundle(d)
    pd.testing.assert_series_equal(
        bundle.volumes["BTC/USDT"], volumes["BTC/USDT"], check_names=False, check_freq=False
    )
    assert np.isfinite(bundle.forecast("BTC/USDT", 6)["forecast"]).all()
    # new candles bring their own volume; ETH's missing returns after its end count as 0
    candles = pd.DataFrame(_candles(histories["BTC/USDT"], n=4))
    f = bundle.forecast("BTC/USDT", 6, candles)
    assert f["origin"].iloc[0] == histories["BTC/USDT"].index[-1] + pd.Timedelta(hours=4)
    assert np.isfinite(f["forecast"]).all()
    more = bundle.forecast("BTC/USDT", 6, candles.assign(volume=1e6))
    assert not np.allclose(more["forecast"], f["forecast"])  # the volume reached the model


def test_a_bundle_without_volumes_still_loads(tmp_path, histories):
    bundle = load_bundle(_write(tmp_path / "b", histories))
    assert bundle.volumes == {}
    assert len(bundle.forecast("BTC/USDT", 3, pd.DataFrame(_candles(histories["BTC/USDT"])))) == 3
