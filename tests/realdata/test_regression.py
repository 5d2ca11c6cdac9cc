"""Regression: on a fixed real dataset, the chosen model must not get worse than the stored
baseline (tests/baselines/regression.json) beyond its tolerance. The baseline only moves
by an explicit `make baseline`."""

import json

import pytest

from scripts.baseline import BASELINE, measure

pytestmark = pytest.mark.realdata


def test_chosen_model_does_not_regress(shared_data):
    stored = json.loads(BASELINE.read_text())
    now = measure(shared_data)
    assert now["setup"] == stored["setup"], "the regression setup changed: run `make baseline`"
    for pair, base in stored["pairs"].items():
        limit = base["mase"] * (1 + stored["tolerance"])
        assert now["pairs"][pair]["mase"] <= limit, (
            f"{pair}: MASE {now['pairs'][pair]['mase']:.4f} ({now['pairs'][pair]['model']}) "
            f"exceeds the baseline {base['mase']:.4f} ({base['model']}) by more than "
            f"{stored['tolerance']:.0%}"
        )
        learned_limit = base["learned_mase"] * (1 + stored["tolerance"])
        assert now["pairs"][pair]["learned_mase"] <= learned_limit, (
            f"{pair}: the best learned model's MASE {now['pairs'][pair]['learned_mase']:.4f} "
            f"exceeds the baseline {base['learned_mase']:.4f} by more than "
            f"{stored['tolerance']:.0%}"
        )
        score_limit = base["interval_score"] * (1 + stored["tolerance"])
        assert now["pairs"][pair]["interval_score"] <= score_limit, (
            f"{pair}: interval score {now['pairs'][pair]['interval_score']:.4f} exceeds the "
            f"baseline {base['interval_score']:.4f} by more than {stored['tolerance']:.0%}"
        )
        miss_then = abs(base["coverage"] - stored["nominal"])
        miss_now = abs(now["pairs"][pair]["coverage"] - stored["nominal"])
        assert miss_now <= miss_then + stored["coverage_tolerance"], (
            f"{pair}: coverage {now['pairs'][pair]['coverage']:.3f} is further from the "
            f"nominal {stored['nominal']:.0%} than the baseline's {base['coverage']:.3f}"
        )
        # the naive MASE only depends on the data: it must match exactly
        assert now["pairs"][pair]["naive_mase"] == pytest.approx(base["naive_mase"], rel=1e-9)
