import numpy as np
import pytest

from cryptocast.modeling.evaluation import mae, naive_scale, score, smape


def test_values_computed_by_hand():
    actual = np.array([10.0, 12.0, 11.0])
    forecast = np.array([11.0, 11.0, 11.0])
    insample = np.array([8.0, 9.0, 11.0, 10.0])  # one-step naive errors 1, 2, 1 -> 4/3
    assert mae(actual, forecast) == pytest.approx(2 / 3)
    assert naive_scale(insample) == pytest.approx(4 / 3)
    # sMAPE: 2*1/21, 2*1/23, 0  -> mean * 100
    assert smape(actual, forecast) == pytest.approx(100 * (2 / 21 + 2 / 23 + 0) / 3)


def test_smape_of_zero_pair_is_zero_not_nan():
    assert smape(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0


def test_mase_undefined_on_constant_insample():
    with pytest.raises(ValueError, match="undefined"):
        naive_scale(np.array([5.0, 5.0, 5.0]))


def test_score_counts_origins_and_scales_by_the_insample_naive_mae():
    import pandas as pd

    bt = pd.DataFrame(
        {
            "origin": [0, 0, 1, 1],
            "actual": [1.0, 2, 3, 4],
            "forecast": [1.0, 2, 3, 5],
            "lower": [0.0] * 4,
            "upper": [3.5] * 4,
            "q0.1": [0.0] * 4,
            "q0.9": [3.5] * 4,
            "gaussian_lower": [0.5] * 4,
            "gaussian_upper": [4.5] * 4,
        }
    )
    s = score(bt, 0.5, levels=[0.1, 0.9], width=0.8)
    assert s["n_forecasts"] == 2
    assert s["mae"] == pytest.approx(0.25)
    assert s["mase"] == pytest.approx(0.5)
    assert s["coverage"] == pytest.approx(0.75)
    # length 3.5 each; the miss by 0.5 costs 2/0.2 * 0.5 = 5; scaled by 0.5
    assert s["interval_score"] == pytest.approx((3.5 + 5 / 4) / 0.5)
    assert s["gaussian_interval_score"] == pytest.approx(4 / 0.5)  # all inside: the length
