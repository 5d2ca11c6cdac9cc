"""The ZenML dashboard in a real browser: after a pipeline run, start the local ZenML
server (`zenml login --local`, what `make dashboard` does), open its runs page in headless
Chromium and find the run listed. Saves reports/zenml-dashboard-runs.png.

Run alone with ``pytest -m browser``. Needs Debian's ``chromium`` and ``chromium-driver``
(`.ci/run` installs them); skipped with the reason when they are absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, chromium, cli_env, free_port, need_browser, run_cli, small_config

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ZENML = str(Path(sys.executable).parent / "zenml")
SCREENSHOT = ROOT / "reports" / "zenml-dashboard-runs.png"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """(dashboard URL, name of the newest pipeline run) after a training run."""
    need_browser()
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
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, run_name = dashboard
    assert run_name.startswith("cryptocast_training-")
    with chromium() as browser:
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
