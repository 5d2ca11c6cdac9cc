"""The closed loop on the real files: a champion trained as of 2021-05-01, then
`run.py monitor` with the candles that followed (the May 2021 crash): live accuracy is
scored, drift is detected, and retraining is triggered and runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli, small_config

pytestmark = [pytest.mark.e2e, pytest.mark.realdata]
NAME = "cryptocast-hour-monitor"


def test_monitor_scores_detects_drift_and_retrains(shared_data, tmp_path):
    small_config(
        "hour",
        tmp_path,
        serve=False,
        deploy={"model_name": NAME},
        source="files",
        data_dir=str(shared_data),
        history=2000,
    )
    env = cli_env(tmp_path)

    def cli(*args):
        return run_cli(env, *args).stdout

    cli("train", "--gran", "hour", "--until", "2021-05-01T00:00:00Z")
    out = cli("monitor", "--gran", "hour")
    assert "origins {'BTC/USDT': '2021-05-01 00:00:00+00:00'" in out
    assert "monitor decision: RETRAIN" in out
    assert "drift share 1.00" in out
    assert "monitor: triggering" in out
    assert "training pipeline (hour) finished" in out

    import mlflow

    from infra.stack import configure_mlflow

    configure_mlflow()
    runs = mlflow.search_runs(
        experiment_names=["cryptocast-hour"],
        output_format="list",
        filter_string="tags.monitor_decision = 'retrain'",
    )
    run = next(r for r in runs if r.data.tags.get("champion_version") == "1")
    assert run.data.metrics["live_scored.BTC-USDT"] == 24
    assert 0 < run.data.metrics["live_mase.BTC-USDT"] < 100
    assert run.data.metrics["drift_share"] == 1.0
    assert run.data.tags["retrain_triggered"] == "true"
    plots = mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")
    assert {Path(p.path).name for p in plots} == {
        "live_forecasts_BTC-USDT.png",
        "live_forecasts_ETH-USDT.png",
    }

    # what the Prometheus exporter reports of this monitoring run
    from cryptocast.runconfig import load_settings
    from infra.exporter_state import granularity_state

    cfg = load_settings(tmp_path / "hour.yaml")
    state = granularity_state(cfg)
    assert state.drift_share == 1.0
    assert set(state.live_mase) == {"BTC/USDT", "ETH/USDT"}
    assert state.last_training_ok is True  # the triggered run
