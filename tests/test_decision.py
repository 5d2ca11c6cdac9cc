import pandas as pd
import pytest

from cryptocast.config import Gates
from cryptocast.evaluation import best_learned, decide


def scores(**mase):
    """scores(BTC={"naive": 1.0, "lgbm": 0.9}, ETH={...})"""
    rows = [
        {"pair": f"{p}/USDT", "candidate": c, "mase": m}
        for p, cands in mase.items()
        for c, m in cands.items()
    ]
    return pd.DataFrame(rows)


def champ(**mase):
    return pd.DataFrame([{"pair": f"{p}/USDT", "mase": m} for p, m in mase.items()])


GATES = Gates(max_mase_ratio=1.0, min_improvement=0.02)
S = scores(
    BTC={"naive": 1.0, "lgbm": 0.90, "nhits": 0.95}, ETH={"naive": 2.0, "lgbm": 1.90, "nhits": 2.10}
)


def test_best_learned_excludes_the_baseline():
    best = best_learned(scores(BTC={"naive": 0.5, "lgbm": 0.9}), "naive")
    assert best.to_dict() == {"BTC/USDT": "lgbm"}


def test_first_run_promotes_when_gate_holds():
    d = decide(S, baseline="naive", gates=GATES, granularity="hour")
    assert d.action == "promote"
    assert {p.pair: p.challenger for p in d.pairs} == {"BTC/USDT": "lgbm", "ETH/USDT": "lgbm"}
    assert d.challenger_mean_mase == pytest.approx((0.9 + 1.9) / 2)


def test_pair_worse_than_naive_serves_naive():
    s = scores(BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 2.02})
    d = decide(s, baseline="naive", gates=GATES, granularity="hour")
    assert d.action == "promote"
    eth = next(p for p in d.pairs if p.pair == "ETH/USDT")
    assert eth.challenger == "naive"
    assert not eth.passed_gate
    assert eth.mase == 2.0
    assert eth.mase_ratio == pytest.approx(1.01)
    assert any("serving the naive" in r for r in eth.reasons)


def test_reject_when_no_pair_beats_naive():
    s = scores(BTC={"naive": 1.0, "lgbm": 1.2}, ETH={"naive": 2.0, "lgbm": 2.5})
    d = decide(s, baseline="naive", gates=GATES, granularity="day")
    assert d.action == "reject"
    assert not d.any_pair_passed


def test_gate_tolerance_is_configurable():
    s = scores(BTC={"naive": 1.0, "lgbm": 1.01})
    assert (
        decide(s, baseline="naive", gates=Gates(max_mase_ratio=1.02), granularity="hour").action
        == "promote"
    )


def test_keep_when_not_better_than_champion_by_margin():
    d = decide(
        S,
        baseline="naive",
        gates=GATES,
        granularity="hour",
        champion=champ(BTC=0.91, ETH=1.91),
        champion_version="3",
    )
    assert d.action == "keep"
    assert "champion v3" in d.reasons[0]
    assert d.champion_mean_mase == pytest.approx(1.41)


def test_promote_when_better_than_champion_by_margin():
    d = decide(
        S,
        baseline="naive",
        gates=GATES,
        granularity="hour",
        champion=champ(BTC=1.0, ETH=2.0),
        champion_version="3",
    )
    assert d.action == "promote"
    assert "< champion v3" in d.reasons[0]


def test_identical_challenger_is_kept_with_zero_margin():
    d = decide(
        S,
        baseline="naive",
        gates=Gates(min_improvement=0.0),
        granularity="hour",
        champion=champ(BTC=0.9, ETH=1.9),
        champion_version="1",
    )
    assert d.action == "keep"


def test_champion_missing_a_pair_is_replaced():
    d = decide(
        S,
        baseline="naive",
        gates=GATES,
        granularity="hour",
        champion=champ(BTC=0.5),
        champion_version="2",
    )
    assert d.action == "promote"
    assert "does not serve ['ETH/USDT']" in d.reasons[0]


def test_summary_mentions_every_pair():
    text = decide(S, baseline="naive", gates=GATES, granularity="hour").summary()
    assert "PROMOTE" in text
    assert "BTC/USDT" in text
    assert "ETH/USDT" in text
