"""The ZenML dashboard in a real browser: after a pipeline run, start the local ZenML
server (`zenml login --local`, what `make dashboard` does), open its runs page in headless
Chromium and find the run listed. Saves reports/zenml-dashboard-runs.png.

Run alone with ``pytest -m browser``. Needs Debian's ``chromium`` and ``chromium-driver``
(`.ci/run` installs them); skipped with the reason when they are absent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, cli_env, run_cli, small_config

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
# Debian's chromium + chromium-driver; GitHub's Ubuntu runners ship google-chrome and a
# matching driver under $CHROMEWEBDRIVER
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver") or shutil.which(
    "chromedriver", path=os.environ.get("CHROMEWEBDRIVER", "")
)
ZENML = str(Path(sys.executable).parent / "zenml")
SCREENSHOT = ROOT / "reports" / "zenml-dashboard-runs.png"
# flags for a headless Chromium on a machine without a display or internet
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(dashboard URL, name of the newest pipeline run) after a training run."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver not found (Debian: chromium chromium-driver)")
    pytest.importorskip("selenium")
    tmp = tmp_path_factory.mktemp("browser")
    small_config("day", tmp, serve=False, deploy={"model_name": "cryptocast-day-browser"})
    env = cli_env(tmp)
    run_cli(env, "train", "--gran", "day")
    url = f"http://127.0.0.1:{free_port()}"
    login = [ZENML, "login", "--local", "--port", url.rsplit(":", 1)[1]]
    subprocess.run(login, env=env, check=True, capture_output=True, timeout=180)
    try:
        # a new user is sent to ZenML's sign-up survey first: answer it as "no e-mails"
        answer = {"email_opted_in": False, "user_metadata": {"finished_onboarding_survey": True}}
        requests.put(f"{url}/api/v1/current-user", json=answer, timeout=30).raise_for_status()
        runs = requests.get(
            f"{url}/api/v1/runs", params={"sort_by": "desc:created", "size": 1}, timeout=30
        ).json()["items"]
        yield url, runs[0]["name"]
    finally:
        subprocess.run([ZENML, "logout", "--local"], env=env, capture_output=True, timeout=120)


def test_dashboard_lists_the_pipeline_run(dashboard):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, run_name = dashboard
    assert run_name.startswith("cryptocast_training-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(f"{url}/projects/default/runs")

        def listed(driver) -> bool:
            return run_name in driver.find_element(By.TAG_NAME, "body").text

        try:
            WebDriverWait(browser, 60, poll_frequency=1).until(listed)
        finally:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            browser.save_screenshot(str(SCREENSHOT))
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "cryptocast_training" in body  # the pipeline column
        assert "Runs" in browser.title or "Runs" in body
    finally:
        browser.quit()
