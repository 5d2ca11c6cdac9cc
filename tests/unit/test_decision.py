import pandas as pd
import pytest

from cryptocast.config import Gates
from cryptocast.evaluation import best_learned, promotion_decision


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
    d = promotion_decision(S, baseline="naive", gates=GATES, granularity="hour")
    assert d.action == "promote"
    assert {p.pair: p.challenger for p in d.pairs} == {"BTC/USDT": "lgbm", "ETH/USDT": "lgbm"}
    assert d.challenger_mean_mase == pytest.approx((0.9 + 1.9) / 2)


def test_pair_worse_than_naive_serves_naive():
    s = scores(BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 2.02})
    d = promotion_decision(s, baseline="naive", gates=GATES, granularity="hour")
    assert d.action == "promote"
    eth = next(p for p in d.pairs if p.pair == "ETH/USDT")
    assert eth.challenger == "naive"
    assert not eth.passed_gate
    assert eth.mase == 2.0
    assert eth.mase_ratio == pytest.approx(1.01)
    assert any("serving the naive" in r for r in eth.reasons)


def test_reject_when_no_pair_beats_naive():
    s = scores(BTC={"naive": 1.0, "lgbm": 1.2}, ETH={"naive": 2.0, "lgbm": 2.5})
    d = promotion_decision(s, baseline="naive", gates=GATES, granularity="day")
    assert d.action == "reject"
    assert not d.any_pair_passed


def test_gate_tolerance_is_configurable():
    s = scores(BTC={"naive": 1.0, "lgbm": 1.01})
    assert (
        promotion_decision(
            s, baseline="naive", gates=Gates(max_mase_ratio=1.02), granularity="hour"
        ).action
        == "promote"
    )


@pytest.mark.parametrize(
    ("gates", "champion", "version", "action", "reason"),
    [
        # not better than the champion by the margin: keep
        (GATES, champ(BTC=0.91, ETH=1.91), "3", "keep", "champion v3"),
        # better by the margin: promote
        (GATES, champ(BTC=1.0, ETH=2.0), "3", "promote", "< champion v3"),
        # identical to the champion, with no margin required: keep
        (Gates(min_improvement=0.0), champ(BTC=0.9, ETH=1.9), "1", "keep", "champion v1"),
        # the champion does not serve a pair: replaced
        (GATES, champ(BTC=0.5), "2", "promote", "does not serve ['ETH/USDT']"),
    ],
    ids=["keep-within-margin", "promote-beyond-margin", "keep-identical", "champion-misses-pair"],
)
def test_against_the_champion(gates, champion, version, action, reason):
    d = promotion_decision(
        S,
        baseline="naive",
        gates=gates,
        granularity="hour",
        champion=champion,
        champion_version=version,
    )
    assert d.action == action
    assert reason in d.reasons[0]
    assert d.champion_version == version


def test_champion_mean_is_over_the_common_pairs():
    d = promotion_decision(
        S, baseline="naive", gates=GATES, granularity="hour", champion=champ(BTC=0.91, ETH=1.91)
    )
    assert d.champion_mean_mase == pytest.approx(1.41)


def test_summary_mentions_every_pair():
    text = promotion_decision(S, baseline="naive", gates=GATES, granularity="hour").summary()
    assert "PROMOTE" in text
    assert "BTC/USDT" in text
    assert "ETH/USDT" in text
