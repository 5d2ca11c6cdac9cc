"""Scale-out: shards of pairs as fit steps, merging their outputs, thread budgets."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_ohlcv, raw_config

from cryptocast import threads
from cryptocast.modeling.backtest import (
    Candidates,
    evaluate_candidates,
    merge_evaluations,
    shards,
    train_candidates,
)
from cryptocast.runconfig import ConfigError, apply_overrides

PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def small(pairs_per_step: int = 2, **scale):
    raw = raw_config("hour")
    raw["data"]["history"] = 400
    raw["validation"]["min_history"] = 100
    raw["evaluation"].update(window=48, stride=12, calibration_window=96)
    raw["candidates"] = {
        "naive": {"kind": "naive"},
        "lightgbm": {"kind": "lightgbm", "params": {"lags": 12, "n_estimators": 10}},
        "global": {"kind": "lightgbm_global", "params": {"lags": 12, "n_estimators": 10}},
    }
    raw["scale"] = {"pairs_per_step": pairs_per_step, **scale}
    return apply_overrides(raw, pairs=PAIRS)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return pd.concat([make_ohlcv(p, periods=400, seed=i) for i, p in enumerate(PAIRS)])


def test_shards_cut_pairs_in_config_order_and_name_their_steps():
    assert [(s.pairs, s.scope, s.step_id) for s in shards(small(2))] == [
        (["BTC/USDT", "ETH/USDT"], "single", "fit_btc_usdt_eth_usdt"),
        (["SOL/USDT"], "single", "fit_sol_usdt"),
        (PAIRS, "multi", "fit_global"),
    ]
    assert [s.step_id for s in shards(small(8))] == ["fit_btc_usdt_and_2_more", "fit_global"]


def test_a_config_without_multi_series_candidates_has_no_global_step():
    cfg = small(1)
    cfg.candidates.pop("global")
    assert [s.step_id for s in shards(cfg)] == ["fit_btc_usdt", "fit_eth_usdt", "fit_sol_usdt"]


def test_pairs_per_step_must_be_positive():
    with pytest.raises(ConfigError, match=r"scale\.pairs_per_step"):
        small(0)


def test_sharded_work_merges_to_the_work_of_one_step(clean):
    """The fan-out changes where work runs, not its result."""
    cfg = small(2)
    whole = evaluate_candidates(clean, train_candidates(clean, cfg), cfg)
    parts = []
    fitted = []
    for shard in shards(cfg):
        candidates = train_candidates(clean, cfg, shard)
        assert set(candidates) == set(shard.pairs)
        kinds = {name for by_name in candidates.values() for name in by_name}
        assert kinds == ({"global"} if shard.scope == "multi" else {"naive", "lightgbm"})
        fitted.append(candidates)
        parts.append(evaluate_candidates(clean, candidates, cfg))
    merged = merge_evaluations(parts, cfg)
    pd.testing.assert_frame_equal(merged.scores, whole.scores)
    pd.testing.assert_frame_equal(merged.losses, whole.losses)
    pd.testing.assert_frame_equal(merged.backtests, whole.backtests)
    assert merged.served == whole.served
    together = Candidates.merge(fitted)
    assert {p: sorted(m) for p, m in together.items()} == {
        p: ["global", "lightgbm", "naive"] for p in PAIRS
    }


def test_cpu_quota_caps_the_cpus(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert threads.available_cpus(cpu_max) == threads.available_cpus(tmp_path / "absent")
    cpu_max.write_text("100000 100000\n")  # a pod limited to one CPU
    assert threads.available_cpus(cpu_max) == 1
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one thread
    assert threads.available_cpus(cpu_max) == 1


@pytest.mark.parametrize(
    ("setting", "workers", "cpus", "expected"),
    [(0, 1, 2, 2), (0, 2, 2, 1), (0, 4, 2, 1), (0, 2, 16, 8), (3, 2, 16, 3)],
)
def test_threads_per_worker(setting, workers, cpus, expected):
    assert threads.per_worker(setting, workers, cpus) == expected


def test_limit_caps_torch_openmp_and_lightgbm():
    import torch
    from threadpoolctl import threadpool_info

    from cryptocast.modeling.forecasting import Forecaster

    before = threads.current()
    try:
        threads.limit(1)
        assert torch.get_num_threads() == 1
        assert threads.current() == 1
        pools = [p for p in threadpool_info() if p["user_api"] == "openmp"]
        assert pools
        assert all(p["num_threads"] == 1 for p in pools)
        fc = Forecaster.build("lightgbm", "lightgbm", {"lags": 12}, 24, 0)
        assert fc.model.kwargs["n_jobs"] == 1
    finally:
        threads.limit(before)


def test_a_fit_steps_backtests_survive_the_artifact_store(clean, tmp_path):
    from infra.materializers import EvaluationMaterializer

    cfg = small(8)
    shard = shards(cfg)[0]
    ev = evaluate_candidates(clean, train_candidates(clean, cfg, shard), cfg)
    EvaluationMaterializer(str(tmp_path)).save(ev)
    back = EvaluationMaterializer(str(tmp_path)).load(type(ev))
    for name in EvaluationMaterializer.FRAMES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(ev, name))
    assert back.served == ev.served
