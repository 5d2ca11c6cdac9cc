"""End to end: the real pipeline on small data in this session's isolated ZenML/MLflow home.

Asserts what a user would check: the MLflow run (metrics, tags, artefacts), the registered
version and its alias, the files in models/<gran>_models/, and the served endpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import requests

from tests.conftest import small_config, stop_front_doors

pytestmark = pytest.mark.e2e


def run_pipeline(config_path: Path, **overrides):
    from cryptocast.runconfig import Overrides, load_run
    from infra.stack import configure_mlflow
    from pipelines.training import run_training

    try:
        return run_training(load_run(config_path, Overrides(**overrides)))
    finally:
        configure_mlflow()  # the tracker resets mlflow's URIs after each step


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from infra.stack import configure_mlflow, ensure_stack

    ensure_stack()
    assert ensure_stack() == []  # idempotent: the second call changes nothing
    configure_mlflow()
    yield
    from infra import deployer

    stop_front_doors(tmp_path_factory.getbasetemp())  # first: they would restart servers
    for name in ("cryptocast-hour", "cryptocast-day"):
        deployer.retire_others(name, keep=None)


def mlflow_run(zenml_run_id: str, experiment: str):
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string=f"tags.zenml_run_id = '{zenml_run_id}'",
        output_format="list",
    )
    assert len(runs) == 1, f"expected one MLflow run for {zenml_run_id}"
    return runs[0]


@pytest.fixture(scope="module")
def hour_run(stack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hour")
    cfg = small_config("hour", tmp, serve=True, source="sample")
    return tmp, cfg, run_pipeline(cfg)


def test_hour_pipeline_tracks_registers_serves_and_writes_files(hour_run):
    import mlflow

    from cryptocast.delivery import registry
    from infra import deployer

    tmp, _, run = hour_run
    assert run.status.value == "completed"
    r = mlflow_run(str(run.id), "cryptocast-hour")
    assert r.data.tags["decision"] == "promote"
    assert r.data.tags["data_source"] == "sample"
    for key in ("git_commit", "lockfile_sha256", "data_fingerprint", "code_fingerprint"):
        assert r.data.tags[key]
    assert {
        "mase.BTC-USDT.naive",
        "smape.ETH-USDT.nhits",
        "mae.BTC-USDT.lightgbm",
        "coverage.ETH-USDT.drift",
        "interval_score.BTC-USDT.nhits",
        "kupiec_p.ETH-USDT.lightgbm",
        "dm.naive.p_value",
        "dm.naive.BTC-USDT.stat",
    } <= set(r.data.metrics)
    assert r.data.params["cfg.horizon"] == "24"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id)}
    assert {"plots", "decision.json", "validation", "config.json", "data"} <= artifacts
    plots = mlflow.MlflowClient().list_artifacts(r.info.run_id, "plots")
    assert {Path(p.path).name for p in plots} == {
        "forecast_vs_actual_BTC-USDT.png",
        "forecast_vs_actual_ETH-USDT.png",
        "calibration_BTC-USDT.png",
        "calibration_ETH-USDT.png",
    }
    decision = mlflow.artifacts.load_dict(f"runs:/{r.info.run_id}/decision.json")
    assert decision["pooled_naive_test"]["lags"] == 0  # small config: stride = horizon
    assert decision["gates"]["significance"] == 0.1

    assert registry.alias_version("cryptocast-hour") == "1"
    mv = mlflow.MlflowClient().get_model_version("cryptocast-hour", "1")
    assert mv.run_id == r.info.run_id
    assert mv.tags["zenml_run_id"] == str(run.id)
    assert (mv.tags["data.kind"], mv.tags["data.fallback"]) == ("sample", "false")

    manifest = json.loads((tmp / "hour_models" / "manifest.json").read_text())
    assert manifest["model_version"] == "1"
    assert set(manifest["pairs"]) == {"BTC/USDT", "ETH/USDT"}
    assert (tmp / "hour_models" / "BTC-USDT.zip").exists()
    calibration = manifest["pairs"]["BTC/USDT"]["calibration"]
    assert set(calibration) == {"0.05", "0.1", "0.5", "0.9", "0.95"}
    assert all(len(q) == 24 for q in calibration.values())
    assert manifest["provenance"]["kind"] == "sample"

    from cryptocast.delivery import store

    rows = store.read_forecasts(store.connect(), "hour", "cryptocast-hour")
    rows = rows[rows["model_version"] == "1"]
    assert rows.groupby("pair").size().to_dict() == {"BTC/USDT": 24, "ETH/USDT": 24}
    stored = json.loads(rows["quantiles"].iloc[0])
    assert stored["0.1"] == pytest.approx(rows["lower"].iloc[0])

    svc = deployer.running("cryptocast-hour")
    assert svc is not None
    assert svc.prediction_url.startswith("http://127.0.0.1:")
    resp = requests.post(
        svc.prediction_url,
        timeout=30,
        json={
            "dataframe_records": [
                {"pair": "BTC/USDT", "horizon": 24},
                {"pair": "ETH/USDT", "horizon": 3},
            ]
        },
    )
    assert resp.status_code == 200
    rows = resp.json()["predictions"]
    assert [r["pair"] for r in rows].count("BTC/USDT") == 24
    assert len(rows) == 27
    assert {r["model_version"] for r in rows} == {"1"}
    for r in rows:  # calibrated quantiles, in order, the interval their 0.1 and 0.9
        q = json.loads(r["quantiles"])
        assert list(q) == ["0.05", "0.1", "0.5", "0.9", "0.95"]
        assert q["0.05"] <= q["0.1"] <= q["0.5"] <= q["0.9"] <= q["0.95"]
        assert (q["0.1"], q["0.9"]) == (pytest.approx(r["lower"]), pytest.approx(r["upper"]))
    bad = requests.post(
        svc.prediction_url, timeout=30, json={"dataframe_records": [{"pair": "DOGE/USDT"}]}
    )
    assert bad.status_code == 400
    assert "unknown pair" in bad.json()["message"]


def test_exporter_reports_the_served_champion(hour_run):
    """The exporter over this session's real state: the champion's server answered the
    requests of the test above, and its counters crossed from the server's process."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from cryptocast.observability import exporter
    from cryptocast.observability.telemetry import METRICS_DIR_ENV
    from cryptocast.runconfig import load_settings
    from infra.exporter_state import granularity_state

    _, cfg_path, _ = hour_run
    cfg = load_settings(cfg_path)
    state = granularity_state(cfg)
    assert state.champion_version == 1
    assert state.serving_up
    assert state.probe_seconds < 5
    assert state.last_training_ok is True
    assert state.live_mase == {}  # no monitoring run yet
    reg = exporter.registry(lambda: [state], Path(os.environ[METRICS_DIR_ENV]))
    got = {  # other tests' servers write to the same directory: only this model's v1
        (s.name, s.labels.get("kind")): s.value
        for fam in text_string_to_metric_families(generate_latest(reg).decode())
        for s in fam.samples
        if s.labels.get("model") == "cryptocast-hour"
        and s.labels.get("model_version") in {None, "1"}
    }
    assert got[("cryptocast_requests_total", None)] >= 2
    assert got[("cryptocast_request_errors_total", "bad_request")] >= 1
    assert got[("cryptocast_serving_up", None)] == 1
    assert got[("cryptocast_champion_version", None)] == 1


def test_second_run_reads_its_config_once_and_a_deploy_change_keeps_the_fits_cached(
    hour_run, monkeypatch
):
    """``cryptocast train`` (in this process) reads and validates its configuration once;
    with only ``deploy:`` and ``monitoring:`` changed, validation and every fit step come
    from the cache, and the champion stays."""
    import yaml
    from click.testing import CliRunner
    from zenml.client import Client

    from cli.train import train
    from cryptocast import runconfig
    from cryptocast.delivery import registry
    from infra import deployer
    from infra.stack import configure_mlflow
    from infra.tracking import TRAINING_PIPELINE

    tmp, cfg, _ = hour_run
    changed = yaml.safe_load(cfg.read_text())
    changed["parameters"]["config"]["deploy"]["timeout_s"] = 61
    changed["parameters"]["config"]["monitoring"]["live_window"] = 23
    path = tmp / "hour-deploy-changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    reads, validations = [], []
    read, apply = runconfig.read_run_config, runconfig.Overrides.apply
    monkeypatch.setattr(runconfig, "read_run_config", lambda p: reads.append(p) or read(p))
    monkeypatch.setattr(
        runconfig.Overrides, "apply", lambda self, raw: validations.append(1) or apply(self, raw)
    )
    before = deployer.running("cryptocast-hour").prediction_url
    try:
        result = CliRunner().invoke(train, ["--gran", "hour", "--config", str(path)])
    finally:
        configure_mlflow()
    assert result.exit_code == 0, result.output
    assert (len(reads), len(validations)) == (1, 1)
    run = Client().get_pipeline(TRAINING_PIPELINE).last_run
    steps = run.steps
    assert steps["validate"].status.value == "cached"
    assert steps["fit_btc_usdt_eth_usdt"].status.value == "cached"  # fitted and backtested
    assert steps["fit_global"].status.value == "cached"
    assert steps["evaluate"].status.value == "completed"  # the champion is re-scored
    assert mlflow_run(str(run.id), "cryptocast-hour").data.tags["decision"] == "keep"
    assert registry.alias_version("cryptocast-hour") == "1"
    assert deployer.running("cryptocast-hour").prediction_url == before


@pytest.mark.realdata
def test_corrupted_file_fails_and_changes_nothing(hour_run, shared_data, tmp_path):
    from cryptocast.data.validation import DataValidationError
    from cryptocast.delivery import registry
    from infra import deployer

    tmp, _, _ = hour_run
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("Binance_BTCUSDT_1h.csv", "Binance_ETHUSDT_1h.csv"):
        shutil.copy(shared_data / name, bad / name)
    lines = (bad / "Binance_ETHUSDT_1h.csv").read_text().splitlines()
    fields = lines[50].split(",")
    fields[6] = "-1"  # a negative close
    lines[50] = ",".join(fields)
    del lines[100:110]  # a ten-hour hole
    (bad / "Binance_ETHUSDT_1h.csv").write_text("\n".join(lines) + "\n")
    manifest_before = (tmp / "hour_models" / "manifest.json").read_text()
    url_before = deployer.running("cryptocast-hour").prediction_url

    cfg = small_config("hour", tmp, serve=True, source="files", data_dir=str(bad))
    # the failed step's own error ends the run (a user's error: exit 2 at the CLI)
    with pytest.raises(DataValidationError, match=r"\[non_positive_price\] ETH/USDT"):
        run_pipeline(cfg)
    assert registry.alias_version("cryptocast-hour") == "1"
    assert (tmp / "hour_models" / "manifest.json").read_text() == manifest_before
    assert deployer.running("cryptocast-hour").prediction_url == url_before


def test_day_pipeline_on_sample_data(stack, tmp_path):
    import mlflow

    from cryptocast.delivery import registry

    run = run_pipeline(small_config("day", tmp_path, serve=False, source="sample"))
    r = mlflow_run(str(run.id), "cryptocast-day")
    assert r.data.tags["granularity"] == "day"
    assert registry.alias_version("cryptocast-day") is not None
    manifest = json.loads((tmp_path / "day_models" / "manifest.json").read_text())
    assert manifest["freq"] == "1D"
    assert manifest["horizon"] == 7
    assert mlflow.MlflowClient().get_registered_model("cryptocast-day").name == "cryptocast-day"
