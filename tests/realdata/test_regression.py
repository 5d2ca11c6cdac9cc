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
        # the naive MASE only depends on the data: it must match exactly
        assert now["pairs"][pair]["naive_mase"] == pytest.approx(base["naive_mase"], rel=1e-9)
