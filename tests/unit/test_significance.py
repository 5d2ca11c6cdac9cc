"""The Diebold-Mariano test against an independent implementation (the `dieboldmariano`
package from PyPI, a test-only oracle) and against what the test must conclude."""

import numpy as np
import pandas as pd
import pytest
from dieboldmariano import dm_test as oracle

from cryptocast.modeling import significance


def _oracle(d: np.ndarray, lags: int, estimator: str = "acf") -> tuple[float, float]:
    """The oracle works on losses: loss(actual, p) = p makes its differential ``d``."""
    zeros = [0.0] * len(d)
    return oracle(
        zeros, list(d), zeros, loss=lambda _a, p: p, h=lags + 1, variance_estimator=estimator
    )


@pytest.mark.parametrize(
    ("seed", "n", "lags", "shift"),
    [(1, 30, 0, 0.0), (2, 120, 3, -0.1), (3, 180, 6, 0.05), (4, 60, 1, -0.3), (5, 25, 2, 0.2)],
)
def test_statistic_matches_the_oracle(seed, n, lags, shift):
    rng = np.random.default_rng(seed)
    # moving-average noise: autocorrelated like the losses of overlapping forecasts
    e = rng.normal(size=n + lags)
    d = np.convolve(e, np.ones(lags + 1) / (lags + 1), mode="valid") + shift
    ours = significance.dm_test(d, lags)
    stat, _ = _oracle(d, lags, ours.variance)
    assert ours.stat == pytest.approx(stat, rel=1e-9)
    assert ours.n == n


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_one_sided_p_value_matches_the_oracle(seed):
    d = np.random.default_rng(seed).normal(-0.4, 1.0, size=80)
    ours = significance.dm_test(d, 2)
    # both: the one-sided p-value that the first model (losses d + 0) is the better one
    _, p_better = oracle([0.0] * 80, list(d), [0.0] * 80, loss=lambda _a, p: p, h=3, one_sided=True)
    assert ours.p_value < 0.05
    assert ours.p_value == pytest.approx(p_better, abs=1e-6)
    _, p_two = _oracle(d, 2)
    assert min(ours.p_value, 1 - ours.p_value) * 2 == pytest.approx(p_two, abs=1e-6)


def test_bartlett_fallback_when_the_acf_variance_is_negative():
    # strongly alternating losses make the lag-1 autocovariance dominate negatively
    d = np.tile([1.0, -1.0], 20) + np.linspace(0, 0.01, 40)
    ours = significance.dm_test(d, 1)
    assert ours.variance == "bartlett"
    stat, _ = _oracle(d, 1, "bartlett")
    assert ours.stat == pytest.approx(stat, rel=1e-9)


def test_clear_improvement_is_significant_and_noise_is_not():
    rng = np.random.default_rng(0)
    better = significance.dm_test(rng.normal(-0.5, 1.0, 200), 3)
    noise = significance.dm_test(rng.normal(0.0, 1.0, 200), 3)
    worse = significance.dm_test(rng.normal(0.5, 1.0, 200), 3)
    assert better.p_value < 0.01
    assert 0.05 < noise.p_value < 0.95
    assert worse.p_value > 0.99


def test_identical_forecasts_give_no_evidence():
    assert significance.dm_test(np.zeros(30), 2).p_value == 0.5


def test_too_few_origins_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 4 origins"):
        significance.dm_test(np.ones(3), 3)


@pytest.mark.parametrize(("horizon", "stride", "lags"), [(24, 24, 0), (24, 6, 3), (7, 1, 6)])
def test_overlap_lags(horizon, stride, lags):
    assert significance.overlap_lags(horizon, stride) == lags


def test_pooled_aligns_pairs_from_the_end_of_their_windows():
    a = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2021-01-01", periods=3, freq="D"))
    b = pd.Series([10.0, 20.0], index=pd.date_range("2020-06-01", periods=2, freq="D"))
    pooled = significance.pooled({"A": a, "B": b})
    assert pooled.tolist() == [6.0, 11.5]  # (2+10)/2, (3+20)/2


def test_origin_losses_are_scaled_mean_absolute_errors():
    bt = pd.DataFrame(
        {"origin": [1, 1, 2, 2], "actual": [10.0, 12.0, 11.0, 11.0], "forecast": [9, 12, 13, 10]}
    )
    assert significance.origin_losses(bt, 2.0).tolist() == [0.25, 0.75]


def test_bonferroni_caps_at_one():
    assert significance.bonferroni(0.03, 3) == pytest.approx(0.09)
    assert significance.bonferroni(0.6, 3) == 1.0
