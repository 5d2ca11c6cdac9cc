"""The forecast app in a real browser: after a training run (which starts the front
door), `make app` serves the Streamlit app; headless Chromium opens it, waits until both
pairs' charts are drawn, and finds the champion's version. Saves reports/forecast-app.png.

Needs Debian's ``chromium`` and ``chromium-driver`` (`.ci/run` installs them); skipped
with the reason when they are absent."""

from __future__ import annotations

import pytest

from scripts.screenshot import running_app, shoot_app
from tests.conftest import ROOT, cli_env, need_browser, run_cli, small_config

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
SCREENSHOT = ROOT / "reports" / "forecast-app.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    need_browser()
    tmp = tmp_path_factory.mktemp("app")
    small_config(
        "hour", tmp, serve=True, deploy={"model_name": "cryptocast-hour-app"}, source="sample"
    )
    env = cli_env(tmp)
    run_cli(env, "train", "--gran", "hour")
    try:
        with running_app("hour", env) as url:  # exactly the README's `make app`
            yield url
    finally:
        run_cli(env, "stop", "--gran", "hour", check=False)


def test_app_shows_the_champion_and_both_pairs(app):
    body = shoot_app(app, SCREENSHOT, charts=2)
    assert "v1" in body
    assert "BTC/USDT" in body
    assert "ETH/USDT" in body
    assert "Backtest against naive" in body
    assert "Promotions" in body
