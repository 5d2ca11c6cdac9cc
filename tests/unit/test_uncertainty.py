"""Calibrated quantiles and their scores, checked against what they must be."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cryptocast.modeling import uncertainty


def test_conformal_quantile_uses_the_finite_sample_rank():
    v = np.arange(1.0, 20.0)  # 19 values: (n+1) * 0.9 = 18 -> the 18th smallest
    assert uncertainty.conformal_quantile(v, 0.9) == 18.0
    assert uncertainty.conformal_quantile(v, 0.1) == 2.0  # floor(20 * 0.1) = 2
    assert uncertainty.conformal_quantile(np.array([3.0]), 0.95) == 3.0


def _scores(n_origins: int, horizon: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2021-01-01", periods=n_origins, freq="h", tz="UTC")
    rows = [
        {
            "origin": o,
            "target_time": o + pd.Timedelta(hours=k),
            "step": k,
            "score": rng.standard_t(5) * scale,
        }
        for o in origins
        for k in range(1, horizon + 1)
    ]
    return pd.DataFrame(rows)


def test_calibrated_quantiles_cover_as_nominal_on_exchangeable_scores():
    levels = [0.05, 0.1, 0.5, 0.9, 0.95]
    table = uncertainty.calibrate(_scores(400, 3, 0), levels, 3)
    fresh = _scores(4000, 3, 1)
    q = uncertainty.at_steps(table, fresh["step"].to_numpy())
    for level in levels:
        below = (fresh["score"].to_numpy() <= q[uncertainty.level_key(level)]).mean()
        assert below == pytest.approx(level, abs=0.02)


def test_calibrate_names_missing_steps():
    with pytest.raises(ValueError, match=r"no forecast for steps \[3\]"):
        uncertainty.calibrate(_scores(10, 2, 0), [0.5], 3)


def test_rolling_uses_only_outcomes_observed_before_the_origin():
    past = _scores(200, 2, 0)
    rows = past[past["origin"] >= past["origin"].iloc[-40]][["origin", "step"]]
    window = pd.Timedelta(hours=50)
    got = uncertainty.rolling(past, rows.reset_index(drop=True), window, [0.9])["0.9"]
    for (_, r), value in zip(rows.iterrows(), got, strict=True):
        seen = past[
            (past["step"] == r["step"])
            & (past["target_time"] <= r["origin"])
            & (past["target_time"] > r["origin"] - window)
        ]
        assert value == uncertainty.conformal_quantile(seen["score"].to_numpy(), 0.9)


def test_quantile_paths_scale_with_volatility_and_horizon():
    table = {"0.1": [-1.0, -1.0], "0.9": [1.0, 1.0]}
    steps = np.array([1, 2])
    scale = uncertainty.spread(0.01, steps)
    q = uncertainty.quantile_paths(
        np.array([100.0, 100.0]), scale, uncertainty.at_steps(table, steps)
    )
    assert q["0.9"][0] == pytest.approx(100 * np.exp(0.01))
    assert q["0.9"][1] == pytest.approx(100 * np.exp(0.01 * np.sqrt(2)))
    assert q["0.1"][1] == pytest.approx(100 * np.exp(-0.01 * np.sqrt(2)))


def test_gaussian_band_is_the_random_walk_band():
    lo, hi = uncertainty.gaussian_band(
        np.full(3, 100.0), uncertainty.spread(0.02, np.arange(1, 4)), 0.8
    )
    assert hi[0] == pytest.approx(100 * np.exp(1.2815515655 * 0.02), rel=1e-6)
    assert np.all(np.diff(hi - lo) > 0)


def test_winkler_penalises_misses_by_two_over_alpha():
    # width 0.8 -> alpha 0.2 -> a miss by 1 costs 10 on top of the interval's length 2
    assert uncertainty.winkler([0.0, 4.0], [-1.0, -1.0], [1.0, 1.0], 0.8) == pytest.approx(
        (2 + 2 + 10 * 3) / 2
    )


def test_pinball_loss():
    assert uncertainty.pinball([10.0], [8.0], 0.9) == pytest.approx(1.8)
    assert uncertainty.pinball([10.0], [12.0], 0.9) == pytest.approx(0.2)


def test_kupiec_matches_the_likelihood_ratio_by_hand():
    hits = np.array([True] * 70 + [False] * 30)  # 30% misses for a nominal 20%
    lr = -2 * (30 * np.log(0.2) + 70 * np.log(0.8) - 30 * np.log(0.3) - 70 * np.log(0.7))
    assert uncertainty.kupiec(hits, 0.8) == pytest.approx(stats.chi2.sf(lr, 1))
    assert uncertainty.kupiec(np.array([True] * 80 + [False] * 20), 0.8) == pytest.approx(1.0)
    assert 0 < uncertainty.kupiec(np.ones(50, bool), 0.8) < 0.01  # never a miss


def test_coverage_by_step_is_the_share_below_each_quantile():
    bt = pd.DataFrame(
        {"step": [1, 1, 2, 2], "actual": [1.0, 3.0, 1.0, 1.0], "q0.5": [2.0, 2.0, 2.0, 0.0]}
    )
    table = uncertainty.coverage_by_step(bt, [0.5])
    assert table["0.5"].tolist() == [0.5, 0.5]
