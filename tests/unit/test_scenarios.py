import numpy as np
import pandas as pd
import pytest

from cryptocast.data.scenarios import shifted
from tests.conftest import files_config, make_ohlcv


def test_shifted_scales_returns_and_volume_after_the_date_only():
    candles = pd.concat([make_ohlcv("BTC/USDT", 100), make_ohlcv("ETH/USDT", 100)])
    after = candles["timestamp"].sort_values().unique()[59]
    out = shifted(candles, after=after, return_scale=3.0, volume_scale=4.0)
    for pair, g in out.groupby("pair"):
        src = candles[candles["pair"] == pair].sort_values("timestamp").reset_index(drop=True)
        g = g.reset_index(drop=True)
        before, later = src["timestamp"] <= after, src["timestamp"] > after
        pd.testing.assert_frame_equal(g[before], src[before].astype(g.dtypes.to_dict()))
        r_src, r_new = np.log(src["close"]).diff(), np.log(g["close"]).diff()
        np.testing.assert_allclose(r_new[later], 3.0 * r_src[later])
        np.testing.assert_allclose(g.loc[later, "volume"], 4.0 * src.loc[later, "volume"])
        assert (g["high"] >= g[["open", "close"]].max(axis=1)).all()
        assert (g["low"] <= g[["open", "close"]].min(axis=1)).all()


def test_shifted_identity_and_bad_scale():
    candles = make_ohlcv("BTC/USDT", 50)
    out = shifted(candles, after=candles["timestamp"].iloc[10])
    np.testing.assert_allclose(out["close"], candles["close"].to_numpy())
    with pytest.raises(ValueError, match="positive"):
        shifted(candles, after=candles["timestamp"].iloc[10], return_scale=0)


def test_what_if_files_are_marked_and_runs_on_them_are_scenario_runs(tmp_path):
    from cryptocast.contracts import Provenance
    from cryptocast.data.scenarios import MARKER, scenario_of, write_shifted
    from cryptocast.data.sources import load_ohlcv

    candles = make_ohlcv("BTC/USDT", 300)
    after = candles["timestamp"].iloc[200]
    write_shifted(candles, tmp_path, after=after, return_scale=2.0)
    assert (tmp_path / MARKER).is_file()
    assert scenario_of(tmp_path)["return_scale"] == 2.0
    cfg = files_config(tmp_path, history=300)
    _, source = load_ohlcv(cfg)
    assert source.details["scenario"]["after"] == str(after)
    assert source.pairs["BTC/USDT"].rows == 300
    prov = Provenance.of_source(source, None)
    assert prov.kind == "scenario"
    assert not prov.real
