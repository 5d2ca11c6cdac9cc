"""`make app-screenshot GRAN=hour`: the forecast app as a browser draws it, in a PNG.

A plain `chromium --headless --screenshot` of a Streamlit app catches its skeleton: the
page is built by JavaScript over a websocket after the first paint. This starts the app
(`make app`, on a free port), opens it in headless Chromium (Debian's ``chromium`` and
``chromium-driver``), waits until every pair's chart is drawn, saves the page and stops
the app. The tests' browser checks use the same functions."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cryptocast.paths import REPO_ROOT as ROOT

# Debian's chromium + chromium-driver; GitHub's Ubuntu runners ship google-chrome and a
# matching driver under $CHROMEWEBDRIVER
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver") or shutil.which(
    "chromedriver", path=os.environ.get("CHROMEWEBDRIVER", "")
)
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
)
CHARTS = '[data-testid="stImage"] img'


@contextlib.contextmanager
def chromium(window: str = "1400,900") -> Iterator:
    """A headless Chromium driven by Selenium, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window}")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(gran: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`make app GRAN=gran` on a free port until the block ends (the whole process group
    is stopped: make kills nothing it started); yields its URL."""
    import requests

    port = free_port()
    proc = subprocess.Popen(
        ["make", "app", f"GRAN={gran}", f"PORT={port}"],
        cwd=ROOT,
        env=env or os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited: {proc.stdout.read()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the app did not start within 60 s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def shoot_app(url: str, out: Path, charts: int, timeout_s: float = 90) -> str:
    """Open the app at ``url``, wait until ``charts`` charts are drawn, save the page to
    ``out`` (also when the wait fails: what was on screen) and return its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(driver) -> bool:
        found = driver.find_elements(By.CSS_SELECTOR, CHARTS)
        return len(found) == charts and all(c.get_attribute("naturalWidth") != "0" for c in found)

    with chromium(window="1400,2400") as browser:
        browser.get(url)
        try:
            WebDriverWait(browser, timeout_s, poll_frequency=1).until(drawn)
            time.sleep(1)  # let the tables below the charts settle
        finally:
            out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(out))
        return browser.find_element(By.TAG_NAME, "body").text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gran", required=True, choices=["hour", "day"])
    parser.add_argument("--out", default=None, help="default reports/forecast-app-<gran>.png")
    args = parser.parse_args()
    if not (CHROMIUM and CHROMEDRIVER):
        sys.exit("error: chromium and chromedriver not found (Debian: chromium chromium-driver)")
    from cryptocast.paths import granularity_config
    from cryptocast.runconfig import load_settings
    from cryptocast.serving.client import ClientError, ForecastClient

    cfg = load_settings(granularity_config(args.gran))
    front = f"http://{cfg.service.host}:{cfg.service.port}"
    try:
        pairs = ForecastClient(front).version().pairs
    except ClientError as exc:
        sys.exit(f"error: the front door does not answer ({exc}); `make serve GRAN={args.gran}`")
    out = Path(args.out or ROOT / "reports" / f"forecast-app-{args.gran}.png")
    with running_app(args.gran) as url:
        shoot_app(url, out, charts=len(pairs))
    print(f"app-screenshot: {out} ({len(pairs)} pairs drawn)")


if __name__ == "__main__":
    main()
