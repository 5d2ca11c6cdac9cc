"""An honest first run on real hourly files: no learned model beats the random walk (the
expected result for hourly crypto prices), so the calibrated random walk is registered and
served as the baseline champion; the same run again keeps it; a CI that wants a learned
model asks for the quality gate and gets REJECT (exit 3). Verdicts read as verdicts: no
failure-looking line in any of it."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import cli_env, run_cli, small_config

pytestmark = [pytest.mark.e2e, pytest.mark.realdata]
NAME = "cryptocast-hour-baseline"
PAIRS = ("--pairs", "BTC/USDT ETH/USDT")
FAILURE_LOOKING = re.compile(r"Traceback|Failed to run step|Skipping step|FAILED")


def test_first_real_run_serves_the_random_walk_and_keeps_it(shared_data, tmp_path):
    from cryptocast.runconfig import load_settings
    from cryptocast.serving.client import ForecastClient
    from infra import frontdoor

    path = small_config(
        "hour",
        tmp_path,
        serve=True,
        deploy={"model_name": NAME, "timeout_s": 60},
        source="files",
        data_dir=str(shared_data),
        history=1500,
    )
    run = yaml.safe_load(path.read_text())
    # no learned model may earn it on this window: the gate of a run that must be honest
    run["parameters"]["config"]["gates"].update(max_mase_ratio=0.9, leakage_floor=0.5)
    path.write_text(yaml.safe_dump(run))
    small_config("day", tmp_path, serve=False, deploy={"model_name": f"{NAME}-day"})  # status
    env = cli_env(tmp_path)
    try:
        first = run_cli(env, "train", "--gran", "hour", *PAIRS)
        out = first.stdout + first.stderr
        assert "no learned model beat the random walk (best: BTC/USDT " in out
        assert (
            f"deploy: {NAME} v1 is champion (previous: none), serving baseline: random walk" in out
        )
        assert not FAILURE_LOOKING.search(out), out[-3000:]

        cfg = load_settings(path)
        answer = ForecastClient(frontdoor.url(cfg)).forecast(
            [{"pair": "BTC/USDT"}, {"pair": "ETH/USDT", "horizon": 2}]
        )
        assert answer.model_version == "1"
        assert {f.pair for f in answer.forecasts} == {"BTC/USDT", "ETH/USDT"}
        assert {f.model for f in answer.forecasts} == {"baseline: random walk"}
        assert all(f.lower < f.forecast < f.upper for f in answer.forecasts)
        status = run_cli(env, "status").stdout
        assert f"{NAME}: champion v1 (baseline: random walk)" in status
        (hour,) = [s for s in json.loads(run_cli(env, "status", "--json").stdout)["granularities"]
                   if s["granularity"] == "hour"]  # fmt: skip
        assert (hour["champion"], hour["label"]) == ("1", "baseline: random walk")
        assert "files" in run_cli(env, "versions", "--gran", "hour").stdout  # data_source

        again = run_cli(env, "train", "--gran", "hour", *PAIRS)
        out = again.stdout + again.stderr
        assert "decision: KEEP" in out
        assert "champion v1 and what users see stay as they are" in out
        assert not FAILURE_LOOKING.search(out), out[-3000:]

        gate = run_cli(env, "train", "--gran", "hour", *PAIRS, "--require-learned", check=False)
        assert gate.returncode == 3, gate.stderr[-2000:]
        assert "decision: REJECT" in gate.stdout
        assert "REJECTED" in gate.stderr
        assert not re.search(
            r"Traceback|Failed to run step|Skipping step", gate.stdout + gate.stderr
        )
    finally:
        run_cli(env, "stop", "--gran", "hour", check=False)
