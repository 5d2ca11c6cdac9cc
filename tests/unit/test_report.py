"""`make report`: every candidate trained and backtested as the pipeline does, written as
a markdown table with its calibration plots (nothing tracked, nothing promoted)."""

from __future__ import annotations

from click.testing import CliRunner

from cli import cli
from tests.conftest import small_config


def test_report_writes_the_table_and_the_plots(tmp_path):
    config = small_config("day", tmp_path, serve=False, source="sample")
    out = tmp_path / "reports" / "accuracy-day.md"
    result = CliRunner().invoke(
        cli, ["report", "--gran", "day", "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Accuracy of every candidate, day (sample data;")
    assert "Made by `make report GRAN=day`" in text
    rows = [line for line in text.splitlines() if line.startswith("| BTC/USDT |")]
    assert {r.split(" | ")[1] for r in rows} == {
        "naive",
        "drift",
        "lightgbm",
        "lightgbm_global",
        "nhits",
    }
    assert "| naive | 1.000 | - |" in " ".join(r.replace("| BTC/USDT ", "") for r in rows)
    for pair in ("BTC-USDT", "ETH-USDT"):
        png = tmp_path / "reports" / "accuracy-day" / f"calibration_{pair}.png"
        assert png.stat().st_size > 10_000
        assert f"(accuracy-day/calibration_{pair}.png)" in text
