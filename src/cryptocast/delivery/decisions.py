"""The promotion decision, as pure functions: which candidate each pair would serve,
whether the data provenance allows a comparison with the champion, and promote / keep /
reject with its numbers and reasons (:class:`cryptocast.contracts.Decision`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptocast.config import Gates, Settings
from cryptocast.contracts import Decision, DMTest, PairDecision, Provenance
from cryptocast.modeling import significance
from cryptocast.modeling.backtest import Evaluation
from cryptocast.modeling.candidates import TORCH_KINDS
from cryptocast.modeling.evaluation import loss_series, versus


def _dm(differential: pd.Series, lags: int) -> DMTest:
    """The decision record's form of :func:`significance.dm_test`."""
    return DMTest(**significance.dm_test(differential, lags).to_dict())


def best_learned(scores: pd.DataFrame, baseline: str) -> pd.Series:
    """Best candidate per pair by MASE, the baseline excluded (it is what must be beaten).

    ``scores``: one row per (pair, candidate) with a ``mase`` column.
    """
    pool = scores[scores["candidate"] != baseline]
    if pool.empty:
        raise ValueError("no candidate besides the baseline; add one to the config")
    best = pool.loc[pool.groupby("pair")["mase"].idxmin()]
    return best.set_index("pair")["candidate"]


def prefer_cheaper(
    learned: pd.Series,
    scores: pd.DataFrame,
    losses: pd.DataFrame,
    *,
    costly: frozenset[str],
    baseline: str,
    lags: int,
    alpha: float,
) -> tuple[pd.Series, dict[str, str]]:
    """Per pair, a ``costly`` best candidate (a torch network: seconds more to start a
    server, hundreds of MB more to hold) gives way to the best cheaper learned candidate
    unless its Diebold-Mariano test against that one says it is better beyond noise
    (one-sided p < ``alpha``). Returns the chosen candidates and, for each pair where a
    cheaper one was chosen, the reason in words."""
    chosen, why = learned.copy(), {}
    pool = scores[(scores["candidate"] != baseline) & ~scores["candidate"].isin(costly)]
    for pair, best in learned.items():
        cheaper = pool[pool["pair"] == pair]
        if best not in costly or cheaper.empty:
            continue
        alt = str(cheaper.loc[cheaper["mase"].idxmin(), "candidate"])
        test = significance.dm_test(versus(losses, pair, best, alt), lags)
        if test.p_value < alpha:
            continue
        mase = scores.set_index(["pair", "candidate"])["mase"]
        chosen[pair] = alt
        why[pair] = (
            f"{best} (MASE {mase[(pair, best)]:.4f}) is not significantly better than the "
            f"cheaper {alt} ({mase[(pair, alt)]:.4f}; DM p = {test.p_value:.3g}, needed < "
            f"{alpha}): serving {alt}"
        )
    return chosen, why


# -- data provenance ------------------------------------------------------------------
@dataclass(frozen=True)
class Guard:
    """What the data provenance allows this run: compare with the champion (``rescore``),
    or not at all (``blocked``: why the champion stays)."""

    rescore: bool
    blocked: str | None = None
    note: str | None = None


def provenance_guard(
    run: Provenance,
    champion: Provenance | None,
    champion_version: str | None,
    *,
    promote_backfill: bool,
) -> Guard:
    """The provenance rules of a promotion (a first run has no champion and no guard):

    * a backfill run (``UNTIL``) never moves the champion unless a person said so;
    * a run on sample, fallback or what-if data never replaces a champion trained on real
      data (exchange or files), and the champion is only re-scored on data of its kind;
    * real data replaces a champion trained on other data without a comparison.
    """
    if champion is None:
        return Guard(rescore=False)
    v = f"champion v{champion_version}"
    if run.until and not promote_backfill:
        return Guard(
            False,
            blocked=f"backfill run (data until {run.until}) never moves the champion; "
            "to release it anyway: make train UNTIL=... PROMOTE_BACKFILL=1",
        )
    if champion.real and not run.real:
        return Guard(
            False,
            blocked=f"this run used {run.describe()}; {v} was trained on {champion.describe()} "
            "and is neither replaced by nor re-scored on it",
        )
    if champion.kind != run.kind:
        if champion.real:
            return Guard(
                False,
                blocked=f"{v} was trained on {champion.describe()}, this run on "
                f"{run.describe()}: not comparable; release it by hand with make promote",
            )
        return Guard(False, note=f"{v} was trained on {champion.describe()}; real data replaces it")
    note = None
    if run.until:
        # allowed, not done: the rules below still decide (a KEEP must not read "released")
        note = (
            f"backfill run (data until {run.until}): a person allowed it to replace the "
            "champion if it earns it (PROMOTE_BACKFILL=1)"
        )
    return Guard(True, note=note)


def promotion_decision(
    scores: pd.DataFrame,
    losses: pd.DataFrame,
    *,
    baseline: str,
    gates: Gates,
    granularity: str,
    lags: int,
    champion_scores: pd.DataFrame | None = None,
    champion_losses: pd.DataFrame | None = None,
    champion_version: str | None = None,
    guard: Guard | None = None,
    costly: frozenset[str] = frozenset(),
) -> Decision:
    """Turn backtests into promote / keep / reject, and say why.

    * Per pair, the best learned candidate (a ``costly`` one only if it is significantly
      better than the best cheaper one: :func:`prefer_cheaper`) passes the quality gate
      when its MASE is at most ``max_mase_ratio`` x the naive MASE on the same window; it
      is then the pair's challenger, otherwise the naive forecast itself is. Its
      Diebold-Mariano test against naive is reported per pair and pooled.
    * When no pair passes, the challenger is the calibrated random walk for every pair
      (the baseline): it is judged by the rules below like any challenger (the first run
      serves it; it replaces a champion only when better beyond noise), unless the
      ``require_learned`` gate asks for a learned model: then ``reject``.
    * ``keep`` when a provenance guard blocks the run (see :func:`provenance_guard`), or
      when a MASE ratio below ``leakage_floor`` makes a pair's skill suspicious.
    * Without a champion to compare with (first run, a pair it does not serve, a champion
      of other data), promote.
    * Otherwise promote only when the challengers' mean MASE beats the champion's by at
      least ``min_improvement`` **and** the pooled DM test says the gain is not noise:
      its one-sided p-value, multiplied by the number of learned candidates the
      challengers were chosen from (Bonferroni), is below ``significance``.
    """
    learned, cheaper = prefer_cheaper(
        best_learned(scores, baseline),
        scores,
        losses,
        costly=costly,
        baseline=baseline,
        lags=lags,
        alpha=gates.significance,
    )
    n_learned = int(scores.loc[scores["candidate"] != baseline, "candidate"].nunique())
    by_key = scores.set_index(["pair", "candidate"])
    champ = None if champion_scores is None else champion_scores.set_index("pair")["mase"]
    pairs: list[PairDecision] = []
    vs_naive, vs_champion = {}, {}
    for pair, cand in learned.items():
        m = float(by_key.loc[(pair, cand), "mase"])
        naive = float(by_key.loc[(pair, baseline), "mase"])
        ratio = m / naive
        ok = ratio <= gates.max_mase_ratio
        chosen = cand if ok else baseline
        d_naive = vs_naive[pair] = versus(losses, pair, cand, baseline)
        reasons = [
            f"{cand} MASE ratio vs naive {ratio:.3f} "
            f"{'<=' if ok else '>'} gate {gates.max_mase_ratio}"
        ]
        if pair in cheaper:
            reasons.insert(0, cheaper[pair])
        if not ok:
            reasons.append(f"the naive forecast is the challenger for {pair}")
        suspicious = ok and ratio < gates.leakage_floor
        if suspicious:
            reasons.append(
                f"LEAKAGE ALARM: ratio {ratio:.3f} < leakage_floor {gates.leakage_floor}"
            )
        champ_m = None if champ is None or pair not in champ.index else float(champ[pair])
        champion_test = None
        if champ_m is not None and champion_losses is not None:
            d = significance.loss_differential(
                loss_series(losses, pair, chosen), loss_series(champion_losses, pair, "champion")
            )
            vs_champion[pair] = d
            champion_test = _dm(d, lags)
        coverage = float(by_key.loc[(pair, chosen), "coverage"]) if "coverage" in by_key else None
        pairs.append(
            PairDecision(
                pair=pair,
                challenger=chosen,
                coverage=coverage,
                passed_gate=ok,
                mase=m if ok else naive,
                naive_mase=naive,
                mase_ratio=ratio,
                champion_mase=champ_m,
                suspicious=suspicious,
                naive_test=_dm(d_naive, lags),
                champion_test=champion_test,
                reasons=reasons,
            )
        )
    passed = [p.pair for p in pairs if p.passed_gate]
    mean_new = float(np.mean([p.mase for p in pairs]))
    common = [p for p in pairs if p.champion_mase is not None]
    mean_champ = float(np.mean([p.champion_mase for p in common])) if common else None
    pooled_naive = _dm(significance.pooled(vs_naive), lags)
    base = {
        "granularity": granularity,
        "pairs": pairs,
        "challenger_mean_mase": mean_new,
        "champion_version": champion_version,
        "champion_mean_mase": mean_champ,
        "any_pair_passed": bool(passed),
        "gates": gates.model_dump(),
        "learned_candidates": n_learned,
        "pooled_naive_test": pooled_naive,
        "guard": None if guard is None else (guard.blocked or guard.note),
    }
    notes = [guard.note] if guard is not None and guard.note else []
    lead: list[str] = []

    def decide(action: str, *reasons: str, **extra) -> Decision:
        return Decision(action=action, reasons=[*lead, *reasons, *notes], **base, **extra)

    if not passed:
        best = "; ".join(
            f"{p.pair} {learned[p.pair]} {p.mase_ratio:.3f}"
            + ("" if p.naive_test is None else f", DM p={p.naive_test.p_value:.2g}")
            for p in pairs
        )
        nothing = f"no learned model beat the random walk (best: {best})"
        if gates.require_learned:
            return decide("reject", f"{nothing}; the quality gate gates.require_learned wants one")
        lead.append(f"{nothing}: the challenger is the calibrated random walk")
    if guard is not None and guard.blocked:
        return decide("keep", f"provenance guard: {guard.blocked}")
    flagged = [p.pair for p in pairs if p.suspicious]
    if flagged:
        return decide(
            "keep",
            f"leakage alarm for {flagged}: a MASE ratio below {gates.leakage_floor} vs the "
            "random walk is more likely a look-ahead leak than skill; not promoted "
            "automatically (check the features, then make promote VERSION=... by hand)",
        )
    if not common:
        if champion_version is None:
            if not passed:
                return decide("promote", "no champion yet: serving the calibrated random walk")
            return decide("promote", f"no champion yet; learned models pass for {passed}")
        why = (
            "serves none of this run's pairs"
            if guard is None or guard.rescore
            else "is not compared on this data (below)"
        )
        return decide(
            "promote",
            f"champion v{champion_version} {why}; "
            + (f"learned models pass for {passed}" if passed else "the random walk replaces it"),
        )
    if len(common) < len(pairs):
        missing = [p.pair for p in pairs if p.champion_mase is None]
        return decide("promote", f"champion v{champion_version} does not serve {missing}")
    test = _dm(significance.pooled(vs_champion), lags)
    p_adj = significance.bonferroni(test.p_value, n_learned)
    gain = 1 - mean_new / mean_champ
    extra = {"pooled_champion_test": test, "p_value_adjusted": p_adj}
    words = (
        f"challenger mean MASE {mean_new:.4f} vs champion v{champion_version} "
        f"{mean_champ:.4f}: {gain:+.2%} (needed {gates.min_improvement:.1%}), pooled DM "
        f"p = {test.p_value:.3g}, x{n_learned} candidates = {p_adj:.3g} "
        f"(needed < {gates.significance})"
    )
    if gain >= gates.min_improvement and p_adj < gates.significance:
        return decide("promote", f"{words}: a real improvement", **extra)
    why = "too small" if gain < gates.min_improvement else "not significant (could be noise)"
    return decide("keep", f"{words}: {why}", **extra)


def decide(
    ev: Evaluation,
    cfg: Settings,
    *,
    champion: Evaluation | None = None,
    champion_version: str | None = None,
    guard: Guard | None = None,
) -> Decision:
    """:func:`promotion_decision` of this run's backtests with the config's gates (and
    the re-scored champion's, when the provenance guard allowed re-scoring)."""
    return promotion_decision(
        ev.scores,
        ev.losses,
        baseline=cfg.evaluation.baseline,
        gates=cfg.gates,
        granularity=cfg.granularity,
        lags=significance.overlap_lags(cfg.horizon, cfg.evaluation.stride),
        champion_scores=None if champion is None else champion.scores,
        champion_losses=None if champion is None else champion.losses,
        champion_version=champion_version,
        guard=guard,
        costly=frozenset(n for n, c in cfg.candidates.items() if c.kind in TORCH_KINDS),
    )
