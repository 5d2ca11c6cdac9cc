"""Provenance guards, end to end on the real files: once a champion was trained on real
data, an offline run (sample data) and a backfill run leave it in place and say why, and
every decision record carries Diebold-Mariano statistics."""

from __future__ import annotations

import pytest

from tests.conftest import small_config
from tests.e2e.test_pipeline_e2e import mlflow_run, run_pipeline

pytestmark = [pytest.mark.realdata, pytest.mark.e2e]

NAME = "cryptocast-day-guard"


def _decision(run) -> dict:
    import mlflow

    r = mlflow_run(str(run.id), "cryptocast-day")
    return mlflow.artifacts.load_dict(f"runs:/{r.info.run_id}/decision.json")


def test_offline_and_backfill_runs_never_replace_a_real_data_champion(shared_data, tmp_path):
    from cryptocast.delivery import registry
    from infra.stack import configure_mlflow, ensure_stack

    ensure_stack()
    configure_mlflow()
    cfg = small_config("day", tmp_path, serve=False, deploy={"model_name": NAME})
    files = {"source": "files", "data_dir": str(shared_data)}

    real = _decision(run_pipeline(cfg, **files))
    assert real["action"] == "promote"
    champion = registry.alias_version(NAME)
    assert registry.version_provenance(NAME, champion).kind == "files"
    for test in [real["pooled_naive_test"], *(p["naive_test"] for p in real["pairs"])]:
        assert {"stat", "p_value", "mean_diff", "lags", "n"} <= set(test)
        assert test["lags"] == 0  # the small config: 7-day forecasts every 7 days

    offline = _decision(run_pipeline(cfg, source="sample"))
    assert offline["action"] == "keep"
    assert "neither replaced by nor re-scored" in offline["guard"]
    assert offline["champion_mean_mase"] is None  # not re-scored on synthetic candles
    assert registry.alias_version(NAME) == champion

    backfill = _decision(run_pipeline(cfg, **files, until="2021-03-01T00:00:00+00:00"))
    assert backfill["action"] == "keep"
    assert backfill["guard"].startswith("backfill run")
    assert registry.alias_version(NAME) == champion
