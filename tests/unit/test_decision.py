"""The promotion decision: quality gate, leakage alarm, provenance guards, and a champion
replaced only by a gain that is large enough and not noise."""

import numpy as np
import pandas as pd
import pytest

from cryptocast.config import Gates
from cryptocast.contracts import Provenance
from cryptocast.delivery.decisions import best_learned, promotion_decision, provenance_guard
from cryptocast.modeling.evaluation import naive_tests

ORIGINS = pd.date_range("2021-01-01", periods=120, freq="6h", tz="UTC")
GATES = Gates(max_mase_ratio=1.0, min_improvement=0.02, significance=0.10, leakage_floor=0.5)


def _losses(mase: float, seed: int, noise: float) -> np.ndarray:
    """Per-origin losses with mean exactly ``mase``."""
    e = np.random.default_rng(seed).normal(0, noise, len(ORIGINS))
    return mase + e - e.mean()


def evaluation(noise: float = 0.05, **mase):
    """(scores, losses) from evaluation(BTC={"naive": 1.0, "lgbm": 0.9}, ETH={...}).
    Candidates share one noise path per pair, so differences are the means (plus noise
    of a candidate-specific seed when ``noise`` is large)."""
    scores, losses = [], []
    for i, (p, cands) in enumerate(mase.items()):
        for j, (c, m) in enumerate(cands.items()):
            scores.append({"pair": f"{p}/USDT", "candidate": c, "mase": m})
            loss = _losses(m, 100 * i, 1.0) + _losses(0, 100 * i + j + 1, noise)
            losses.append(
                pd.DataFrame({"pair": f"{p}/USDT", "candidate": c, "origin": ORIGINS, "loss": loss})
            )
    return pd.DataFrame(scores), pd.concat(losses, ignore_index=True)


def champion(**mase):
    """The champion's (scores, losses): per pair, named 'champion'."""
    return evaluation(**{p: {"champion": m} for p, m in mase.items()})


def decide(ev, champ=None, version="3", gates=GATES, guard=None, costly=frozenset()):
    scores, losses = ev
    return promotion_decision(
        scores,
        losses,
        baseline="naive",
        gates=gates,
        granularity="hour",
        lags=3,
        champion_scores=None if champ is None else champ[0],
        champion_losses=None if champ is None else champ[1],
        champion_version=None if champ is None else version,
        guard=guard,
        costly=costly,
    )


S = evaluation(
    BTC={"naive": 1.0, "lgbm": 0.90, "nhits": 0.95}, ETH={"naive": 2.0, "lgbm": 1.90, "nhits": 2.10}
)


def test_best_learned_excludes_the_baseline():
    s, _ = evaluation(BTC={"naive": 0.5, "lgbm": 0.9})
    assert best_learned(s, "naive").to_dict() == {"BTC/USDT": "lgbm"}


def test_a_torch_model_not_significantly_better_gives_way_to_a_cheaper_one():
    # ETH's nhits is 1% better than lgbm on noisy losses: not beyond noise
    ev = evaluation(noise=0.5, ETH={"naive": 2.0, "lgbm": 1.92, "nhits": 1.90})
    d = decide(ev, costly=frozenset({"nhits"}))
    (eth,) = d.pairs
    assert eth.challenger == "lgbm"
    assert eth.mase == pytest.approx(1.92)
    assert eth.reasons[0].startswith("nhits (MASE 1.9000) is not significantly better than the")
    assert "serving lgbm" in eth.reasons[0]
    # nothing is said to be costly: the best is served, as before
    assert decide(ev).pairs[0].challenger == "nhits"


def test_a_torch_model_significantly_better_is_served():
    ev = evaluation(noise=0.01, ETH={"naive": 2.0, "lgbm": 1.95, "nhits": 1.60})
    (eth,) = decide(ev, costly=frozenset({"nhits"})).pairs
    assert eth.challenger == "nhits"
    assert not any("not significantly better" in r for r in eth.reasons)


def test_first_run_promotes_when_gate_holds():
    d = decide(S)
    assert d.action == "promote"
    assert {p.pair: p.challenger for p in d.pairs} == {"BTC/USDT": "lgbm", "ETH/USDT": "lgbm"}
    assert d.challenger_mean_mase == pytest.approx((0.9 + 1.9) / 2)
    assert d.learned_candidates == 2
    assert d.pooled_naive_test.p_value < 0.01


def test_pair_worse_than_naive_serves_naive():
    d = decide(evaluation(BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 2.02}))
    eth = next(p for p in d.pairs if p.pair == "ETH/USDT")
    assert (d.action, eth.challenger, eth.passed_gate, eth.mase) == ("promote", "naive", False, 2.0)
    assert eth.mase_ratio == pytest.approx(1.01)
    assert eth.naive_test.mean_diff == pytest.approx(0.02)
    assert any("the naive forecast is the challenger" in r for r in eth.reasons)


NOTHING_LEARNED = evaluation(BTC={"naive": 1.0, "lgbm": 1.2}, ETH={"naive": 2.0, "lgbm": 2.5})


def test_first_run_with_nothing_better_than_naive_serves_the_random_walk():
    d = decide(NOTHING_LEARNED)
    assert (d.action, d.any_pair_passed) == ("promote", False)
    assert {p.challenger for p in d.pairs} == {"naive"}
    assert d.reasons[0].startswith(
        "no learned model beat the random walk (best: BTC/USDT lgbm 1.200, DM p="
    )
    assert "ETH/USDT lgbm 1.250" in d.reasons[0]
    assert d.reasons[1] == "no champion yet: serving the calibrated random walk"


def test_the_random_walk_again_keeps_the_random_walk_champion():
    # the champion is the random walk, re-scored on the same window: nothing to gain
    naive = NOTHING_LEARNED[1][NOTHING_LEARNED[1]["candidate"] == "naive"]
    champ = (
        NOTHING_LEARNED[0][NOTHING_LEARNED[0]["candidate"] == "naive"].assign(candidate="champion"),
        naive.assign(candidate="champion"),
    )
    d = decide(NOTHING_LEARNED, champ)
    assert d.action == "keep"
    assert d.reasons[0].startswith("no learned model beat the random walk")
    assert "+0.00%" in d.reasons[1]
    assert d.reasons[1].endswith("too small")


def test_a_learned_model_replaces_the_random_walk_by_the_usual_rules():
    champ = champion(BTC=1.0, ETH=2.0)  # the random walk's MASE
    ev = evaluation(noise=0.05, BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 1.9})
    assert decide(ev, champ).action == "promote"


def test_require_learned_gate_rejects_when_nothing_beats_naive():
    d = decide(NOTHING_LEARNED, gates=GATES.model_copy(update={"require_learned": True}))
    assert d.action == "reject"
    assert not d.any_pair_passed
    assert "gates.require_learned" in d.reasons[0]


def test_leakage_alarm_keeps_the_champion_and_says_why():
    d = decide(evaluation(BTC={"naive": 1.0, "lgbm": 0.4}))
    assert d.action == "keep"
    assert d.pairs[0].suspicious
    assert "leakage alarm" in d.reasons[0]


@pytest.mark.parametrize(
    ("champ_mase", "noise", "action", "words"),
    [
        ({"BTC": 1.0, "ETH": 2.0}, 0.05, "promote", "a real improvement"),
        ({"BTC": 0.905, "ETH": 1.905}, 0.05, "keep", "too small"),
        # a large gain on paper, but the losses are so noisy it could be chance
        ({"BTC": 1.0, "ETH": 2.0}, 3.0, "keep", "not significant"),
    ],
    ids=["significant-and-large", "too-small", "noise"],
)
def test_against_the_champion(champ_mase, noise, action, words):
    ev = evaluation(noise=noise, BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 1.9})
    d = decide(ev, champion(**champ_mase))
    assert d.action == action
    assert words in d.reasons[0]
    assert d.pooled_champion_test is not None
    assert d.p_value_adjusted == pytest.approx(min(1.0, d.pooled_champion_test.p_value * 1))
    assert all(p.champion_test is not None for p in d.pairs)


def test_champion_missing_a_pair_is_replaced():
    d = decide(S, champion(BTC=0.5))
    assert d.action == "promote"
    assert "does not serve ['ETH/USDT']" in d.reasons[0]


def test_bonferroni_counts_the_learned_candidates():
    d = decide(S, champion(BTC=0.93, ETH=1.93))
    assert d.p_value_adjusted == pytest.approx(min(1.0, 2 * d.pooled_champion_test.p_value))


REAL = Provenance(kind="files")
SAMPLE = Provenance(kind="sample")
BACKFILL = Provenance(kind="files", until="2021-01-01")


@pytest.mark.parametrize(
    ("run", "champ", "backfill_ok", "rescore", "blocked"),
    [
        (SAMPLE, REAL, False, False, "neither replaced by nor re-scored"),
        (
            Provenance(kind="exchange", fallback=False),
            Provenance(kind="files"),
            False,
            False,
            "not comparable",
        ),
        (
            Provenance(kind="sample", fallback=True),
            Provenance(kind="exchange"),
            False,
            False,
            "(a fallback)",
        ),
        (Provenance(kind="scenario"), REAL, False, False, "scenario data"),
        (Provenance(kind="files", until="2021-01-01"), REAL, False, False, "backfill run"),
        (Provenance(kind="files", until="2021-01-01"), REAL, True, True, None),
        (REAL, SAMPLE, False, False, None),
        (REAL, REAL, False, True, None),
        (SAMPLE, SAMPLE, False, True, None),
    ],
)
def test_provenance_guard(run, champ, backfill_ok, rescore, blocked):
    g = provenance_guard(run, champ, "2", promote_backfill=backfill_ok)
    assert g.rescore == rescore
    if blocked is None:
        assert g.blocked is None
    else:
        assert blocked in g.blocked


def test_guard_keeps_the_champion_and_is_recorded():
    guard = provenance_guard(SAMPLE, REAL, "2", promote_backfill=False)
    d = decide(S, guard=guard)
    assert d.action == "keep"
    assert d.reasons[0].startswith("provenance guard:")
    assert d.guard == guard.blocked


def test_first_run_has_no_guard():
    assert provenance_guard(SAMPLE, None, None, promote_backfill=False).blocked is None


def test_provenance_round_trips_through_registry_tags():
    p = Provenance(kind="exchange", fallback=True, until="2021-01-01T00:00:00+00:00", first="a")
    assert Provenance.from_tags(p.tags()) == p
    assert Provenance.from_tags({"data_source": "binance"}).kind == "exchange"  # older versions


def test_naive_tests_cover_every_candidate_and_the_pool():
    t = naive_tests(S[1], "naive", 3)
    assert set(t["candidate"]) == {"lgbm", "nhits"}
    assert set(t["pair"]) == {"BTC/USDT", "ETH/USDT", "pooled"}


def test_summary_mentions_every_pair_and_the_tests():
    text = decide(S).summary()
    assert "PROMOTE" in text
    assert "ETH/USDT" in text
    assert "DM vs naive p=" in text
    assert "best learned / naive" in text


def test_a_champion_of_other_data_is_named_not_called_absent():
    guard = provenance_guard(REAL, SAMPLE, "1", promote_backfill=False)
    d = promotion_decision(*S, baseline="naive", gates=GATES, granularity="hour", lags=3,
                           champion_version="1", guard=guard)  # fmt: skip
    assert d.action == "promote"
    assert d.reasons[0].startswith("champion v1 is not compared on this data")
    assert "real data replaces it" in d.reasons[1]


def test_a_kept_backfill_run_does_not_read_as_released():
    """It said "released by a person's decision" under a KEEP."""
    guard = provenance_guard(BACKFILL, REAL, "1", promote_backfill=True)
    champ = champion(BTC=0.905, ETH=1.905)
    ev = evaluation(noise=0.05, BTC={"naive": 1.0, "lgbm": 0.9}, ETH={"naive": 2.0, "lgbm": 1.9})
    d = decide(ev, champ, version="1", guard=guard)
    assert d.action == "keep"
    assert not any("released" in r for r in d.reasons)
    assert d.reasons[-1].endswith("a person allowed it to replace the champion if it earns it "
                                  "(PROMOTE_BACKFILL=1)")  # fmt: skip


def test_a_champion_serving_none_of_the_pairs_is_replaced_not_rescored():
    """A day run on BTC/USD over a BTC/USDT+ETH/USDT champion crashed in evaluate
    ("No objects to concatenate")."""
    from cryptocast.delivery.decisions import Guard
    from cryptocast.modeling.backtest import rescore
    from cryptocast.runconfig import apply_overrides
    from tests.conftest import raw_config

    cfg = apply_overrides(raw_config("hour"), pairs=["BTC/USD"])
    assert rescore(pd.DataFrame(), {"BTC/USDT": object(), "ETH/USDT": object()}, cfg, "c") is None
    d = promotion_decision(*S, baseline="naive", gates=GATES, granularity="hour", lags=3,
                           champion_version="4", guard=Guard(rescore=True))  # fmt: skip
    assert d.action == "promote"
    assert d.reasons[0].startswith("champion v4 serves none of this run's pairs; learned models")
