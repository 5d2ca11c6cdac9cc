"""The forecast app in a real browser: after a training run (which starts the front
door), `make app` serves the Streamlit app; headless Chromium opens it, waits until both
pairs' charts are drawn, and finds the champion's version. Saves reports/forecast-app.png.

Needs Debian's ``chromium`` and ``chromium-driver`` (`.ci/run` installs them); skipped
with the reason when they are absent."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.conftest import ROOT, chromium, cli_env, free_port, need_browser, run_cli, small_config

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
    port = free_port()
    # exactly the README's command (make kills nothing it started: stop the whole group)
    proc = subprocess.Popen(["make", "app", "GRAN=hour", f"PORT={port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        run_cli(env, "stop", "--gran", "hour", check=False)


def test_app_shows_the_champion_and_both_pairs(app):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium(window="1400,2400") as browser:
        browser.get(app)

        def drawn(driver) -> bool:
            charts = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"] img')
            return len(charts) == 2 and all(c.get_attribute("naturalWidth") != "0" for c in charts)

        try:
            WebDriverWait(browser, 90, poll_frequency=1).until(drawn)
            time.sleep(1)  # let the tables below the charts settle
        finally:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT))
        body = browser.find_element(By.TAG_NAME, "body").text
    assert "v1" in body
    assert "BTC/USDT" in body
    assert "ETH/USDT" in body
    assert "Backtest against naive" in body
    assert "Promotions" in body
