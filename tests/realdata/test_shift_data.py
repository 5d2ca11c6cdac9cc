"""`cryptocast shift-data` on the real files: the what-if data of the monitoring demo."""

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.realdata


def test_shift_data_cli_on_the_real_files(shared_data, tmp_path):
    from click.testing import CliRunner

    from cli import cli

    args = ["shift-data", "--gran", "hour", "--data-dir", str(shared_data), "--out", str(tmp_path)]
    args += ["--after", "2021-04-01T00:00:00Z", "--until", "2021-04-03T00:00:00Z"]
    out = CliRunner().invoke(cli, [*args, "--return-scale", "3", "--volume-scale", "4"])
    assert out.exit_code == 0, out.output
    assert "48 after 2021-04-01" in out.output
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["BTC-USDT.csv", "ETH-USDT.csv", "SCENARIO.json"]  # marked as a what-if
    g = pd.read_csv(tmp_path / "BTC-USDT.csv", parse_dates=["timestamp"])
    assert g["timestamp"].iloc[-1] == pd.Timestamp("2021-04-03", tz="UTC")
    r = np.log(g["close"]).diff()
    assert r.iloc[-48:].std() > 1.2 * r.iloc[-800:-48].std()
