"""Shared fixtures. Every test session gets its own ZenML home (and so its own MLflow
tracking store and artifact store): nothing touches the developer's state."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cryptocast.paths import REPO_ROOT as ROOT
from scripts.screenshot import CHROMEDRIVER, CHROMIUM, chromium, free_port  # noqa: F401

SHARED_DATA = ROOT.parent / "shared" / "data" / "cryptodatadownload"
CLI = str(Path(sys.executable).parent / "cryptocast")


def pytest_configure(config: pytest.Config) -> None:
    # before anything imports zenml: an isolated home for the whole session
    home = tempfile.mkdtemp(prefix="cryptocast-test-zenml-")
    os.environ["ZENML_CONFIG_PATH"] = home
    os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
    os.environ["ZENML_AUTO_OPEN_DASHBOARD"] = "false"
    os.environ["ZENML_LOGGING_COLORS_DISABLED"] = "true"
    os.environ["DATABASE_URL"] = f"sqlite:///{home}/forecasts.db"
    os.environ["CRYPTOCAST_METRICS_DIR"] = f"{home}/metrics"
    os.environ.pop("CRYPTOCAST_FAILPOINT", None)
    config.stash[STRAYS] = {p for p in STRAY_FILES if p.exists()}


# files that MLflow or ZenML create in the working directory when code uses them without
# the project's stores (a test that mocks the setup away): none may appear in the checkout
STRAY_FILES = (ROOT / "mlflow.db", ROOT / "mlruns")
STRAYS = pytest.StashKey[set]()


# the two longest test modules (minutes each) start first, one on each worker of `make
# test` (pytest-xdist, one module per worker at a time, in this order), so that they run
# beside the rest instead of after it
LONGEST_FIRST = ("test_remote_stack_e2e.py", "test_frontdoor_e2e.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


def raw_config(gran: str) -> dict:
    """``parameters.config`` of configs/<gran>.yaml as plain data."""
    with open(ROOT / "configs" / f"{gran}.yaml") as fh:
        return yaml.safe_load(fh)["parameters"]["config"]


def files_config(data_dir: Path, *, history: int, **overrides):
    """The hour settings reading BTC/USDT from ``data_dir``, with windows small enough for
    ``history`` candles (``overrides``: more of :func:`apply_overrides`)."""
    from cryptocast.runconfig import apply_overrides

    raw = raw_config("hour")
    raw["data"]["history"] = history
    raw["evaluation"].update(window=24, calibration_window=24)
    raw["validation"]["min_history"] = 50
    return apply_overrides(
        raw, source="files", data_dir=str(data_dir), pairs=["BTC/USDT"], **overrides
    )


@pytest.fixture
def hour_cfg():
    from cryptocast.runconfig import apply_overrides

    return apply_overrides(raw_config("hour"))


def make_ohlcv(
    pair: str = "BTC/USDT",
    periods: int = 200,
    freq: str = "1h",
    start: str = "2024-01-01",
    seed: int = 0,
) -> pd.DataFrame:
    """A valid, gap-free OHLCV frame (random walk)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(start, periods=periods, freq=freq, tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, periods)))
    open_ = np.r_[100.0, close[:-1]]
    return pd.DataFrame(
        {
            "pair": pair,
            "timestamp": times,
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.uniform(1, 10, periods),
        }
    )


SMALL = {
    "hour": {
        "history": 1500,
        "window": 240,
        "stride": 24,
        "calibration_window": 480,
        "min_history": 600,
        "lightgbm": {"lags": 24, "n_estimators": 30, "multi_models": False},
        "nhits": {"input_chunk_length": 48, "n_epochs": 1},
    },
    "day": {
        "history": 700,
        "window": 84,
        "stride": 7,
        "calibration_window": 140,
        "min_history": 300,
        "lightgbm": {"lags": 14, "n_estimators": 30, "multi_models": False},
        "nhits": {"input_chunk_length": 14, "n_epochs": 2},
    },
}


def small_config(
    gran: str, tmp: Path, *, serve: bool, deploy: dict | None = None, cache: bool = True, **data
) -> Path:
    """configs/<gran>.yaml with small data and fast candidates, written to
    ``tmp/<gran>.yaml`` (end-to-end tests: the plumbing is under test, not the models).
    ``cache=False``: every run fits (a fit step's cache key is its data and its section of
    the config only, so runs of other tests in the same ZenML home would serve it)."""
    run = yaml.safe_load((ROOT / "configs" / f"{gran}.yaml").read_text())
    run["enable_cache"] = cache
    c, s = run["parameters"]["config"], SMALL[gran]
    c["data"].update({"history": s["history"], "cache_dir": str(tmp / "cache"), **data})
    c["validation"]["min_history"] = s["min_history"]
    c["evaluation"].update(
        window=s["window"], stride=s["stride"], calibration_window=s["calibration_window"]
    )
    c["candidates"]["lightgbm"]["params"] = s["lightgbm"]
    c["candidates"]["nhits"]["params"] = s["nhits"]
    # the plumbing is under test here, not the models
    c["gates"].update(max_mase_ratio=1.5, leakage_floor=0.5)
    c["deploy"].update(models_dir=str(tmp / f"{gran}_models"), serve=serve, **(deploy or {}))
    c["service"].update(port=free_port(), check_interval_s=0.2)
    path = tmp / f"{gran}.yaml"
    path.write_text(yaml.safe_dump(run))
    return path


def need_browser() -> None:
    """Skip, saying why, unless headless Chromium and its driver are installed."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver not found (Debian: chromium chromium-driver)")
    pytest.importorskip("selenium")


def stop_front_doors(base: Path) -> None:
    """Stop the front doors that releases started for the configs under ``base``: they
    run detached, and their state files lie beside each test's models directory."""
    for state in Path(base).rglob(".*.front.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pid = json.loads(state.read_text())["pid"]
            os.killpg(pid, signal.SIGTERM)
            for _ in range(100):  # wait until it is gone (it must not restart servers)
                os.kill(pid, 0)
                time.sleep(0.1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_front_doors(session.config._tmp_path_factory.getbasetemp())
    if hasattr(session.config, "workerinput"):
        return  # the controller checks once, after every worker
    new = [p.name for p in STRAY_FILES if p.exists() and p not in session.config.stash[STRAYS]]
    if new:
        session.config.get_terminal_writer().line(
            f"\nerror: the tests wrote {new} into the checkout (MLflow used without the "
            "session's stores)",
            red=True,
        )
        session.exitstatus = 1


def cli_env(config_dir: Path) -> dict[str, str]:
    """Environment for ``cryptocast`` as a user runs it, with the configs in ``config_dir``."""
    env = os.environ | {
        "CRYPTOCAST_CONFIG_DIR": str(config_dir),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("CRYPTOCAST_FAILPOINT", None)
    return env


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``cryptocast ARGS`` (the console script) in a subprocess; with ``check``, fail
    showing its output."""
    proc = subprocess.run(
        [CLI, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"cryptocast {' '.join(args)} -> {proc.returncode}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc
