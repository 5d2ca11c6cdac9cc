import numpy as np
import pandas as pd
import pytest

from cryptocast.data.scenarios import shifted
from tests.conftest import make_ohlcv


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


@pytest.mark.realdata
def test_shift_data_cli_on_the_real_files(shared_data, tmp_path):
    from click.testing import CliRunner

    from run import cli

    args = ["shift-data", "--gran", "hour", "--data-dir", str(shared_data), "--out", str(tmp_path)]
    args += ["--after", "2021-04-01T00:00:00Z", "--until", "2021-04-03T00:00:00Z"]
    out = CliRunner().invoke(cli, [*args, "--return-scale", "3", "--volume-scale", "4"])
    assert out.exit_code == 0, out.output
    assert "48 after 2021-04-01" in out.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["BTC-USDT.csv", "ETH-USDT.csv"]
    g = pd.read_csv(tmp_path / "BTC-USDT.csv", parse_dates=["timestamp"])
    assert g["timestamp"].iloc[-1] == pd.Timestamp("2021-04-03", tz="UTC")
    r = np.log(g["close"]).diff()
    assert r.iloc[-48:].std() > 1.2 * r.iloc[-800:-48].std()
