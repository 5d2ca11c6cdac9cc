"""Backtest metrics and the promotion decision, as pure functions.

Metrics over a rolling-origin backtest (all forecasts of all origins pooled):

* ``MASE``  = MAE / in-sample MAE of the one-step naive forecast (training window);
* ``sMAPE`` = 100 * mean(2|y - f| / (|y| + |f|));
* ``MAE``   = mean |y - f|;
* ``coverage`` = share of actuals inside the forecast interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast.config import Gates
from cryptocast.contracts import Decision, PairDecision

METRICS = ("mase", "smape", "mae", "coverage")


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    ratio = np.divide(2 * np.abs(a - f), denom, out=np.zeros_like(a), where=denom > 0)
    return float(100 * np.mean(ratio))


def naive_scale(insample: np.ndarray) -> float:
    """MAE of the in-sample one-step naive forecast (MASE's denominator)."""
    diffs = np.abs(np.diff(np.asarray(insample, float)))
    if len(diffs) == 0 or diffs.mean() == 0:
        raise ValueError("MASE is undefined: the in-sample series is constant or too short")
    return float(diffs.mean())


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray) -> float:
    return mae(actual, forecast) / naive_scale(insample)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    a = np.asarray(actual, float)
    return float(np.mean((a >= np.asarray(lower)) & (a <= np.asarray(upper))))


def score(backtest: pd.DataFrame, insample: np.ndarray) -> dict[str, float]:
    """Metrics of one candidate's backtest (columns actual, forecast, lower, upper)."""
    a, f = backtest["actual"].to_numpy(), backtest["forecast"].to_numpy()
    return {
        "mase": mase(a, f, insample),
        "smape": smape(a, f),
        "mae": mae(a, f),
        "coverage": coverage(a, backtest["lower"].to_numpy(), backtest["upper"].to_numpy()),
        "n_forecasts": int(backtest["origin"].nunique()),
    }


def best_learned(scores: pd.DataFrame, baseline: str) -> pd.Series:
    """Best candidate per pair by MASE, the baseline excluded (it is what must be beaten).

    ``scores``: one row per (pair, candidate) with a ``mase`` column.
    """
    pool = scores[scores["candidate"] != baseline]
    if pool.empty:
        raise ValueError("no candidate besides the baseline; add one to the config")
    best = pool.loc[pool.groupby("pair")["mase"].idxmin()]
    return best.set_index("pair")["candidate"]


def promotion_decision(
    scores: pd.DataFrame,
    *,
    baseline: str,
    gates: Gates,
    granularity: str,
    champion: pd.DataFrame | None = None,
    champion_version: str | None = None,
) -> Decision:
    """Turn metrics into promote / keep / reject.

    * Per pair, the best learned candidate passes the quality gate when its MASE is at most
      ``max_mase_ratio`` x the naive MASE on the same backtest window. It is then the pair's
      challenger; otherwise the naive forecast itself is (a model worse than the random walk
      is never served).
    * ``reject`` when no pair passes: nothing learned beats the random walk anywhere, and
      the pipeline fails.
    * With a champion (re-scored on the same window: ``champion`` has one row per pair with
      ``mase``), promote only when the challengers' mean MASE beats the champion's by at
      least ``min_improvement`` (relative) on the pairs both serve; otherwise ``keep``.
    * Without a champion (or when it does not serve every pair), promote.
    """
    learned = best_learned(scores, baseline)
    by_key = scores.set_index(["pair", "candidate"])
    champ = None if champion is None else champion.set_index("pair")["mase"]
    pairs: list[PairDecision] = []
    for pair, cand in learned.items():
        m = float(by_key.loc[(pair, cand), "mase"])
        naive = float(by_key.loc[(pair, baseline), "mase"])
        ratio = m / naive
        ok = ratio <= gates.max_mase_ratio
        reasons = [
            f"{cand} MASE ratio vs naive {ratio:.3f} "
            f"{'<=' if ok else '>'} gate {gates.max_mase_ratio}"
        ]
        if not ok:
            reasons.append(f"serving the naive forecast for {pair}")
        champ_m = None if champ is None or pair not in champ.index else float(champ[pair])
        pairs.append(
            PairDecision(
                pair=pair,
                challenger=cand if ok else baseline,
                passed_gate=ok,
                mase=m if ok else naive,
                naive_mase=naive,
                mase_ratio=ratio,
                champion_mase=champ_m,
                reasons=reasons,
            )
        )
    passed = [p.pair for p in pairs if p.passed_gate]
    mean_new = float(np.mean([p.mase for p in pairs]))
    common = [p for p in pairs if p.champion_mase is not None]
    mean_champ = float(np.mean([p.champion_mase for p in common])) if common else None
    base = {
        "granularity": granularity,
        "pairs": pairs,
        "challenger_mean_mase": mean_new,
        "champion_version": champion_version,
        "champion_mean_mase": mean_champ,
        "any_pair_passed": bool(passed),
    }
    if not passed:
        return Decision(
            action="reject",
            reasons=[
                f"no pair's best model beats the naive forecast within gate "
                f"max_mase_ratio={gates.max_mase_ratio}"
            ],
            **base,
        )
    if not common:
        return Decision(
            action="promote",
            reasons=[f"no champion yet; learned models pass the gate for {passed}"],
            **base,
        )
    if len(common) < len(pairs):
        missing = [p.pair for p in pairs if p.champion_mase is None]
        return Decision(
            action="promote",
            reasons=[f"champion v{champion_version} does not serve {missing}"],
            **base,
        )
    needed = mean_champ * (1 - gates.min_improvement)
    if mean_new < needed:
        return Decision(
            action="promote",
            reasons=[
                f"challenger mean MASE {mean_new:.4f} < champion v{champion_version} "
                f"{mean_champ:.4f} x (1 - {gates.min_improvement}) = {needed:.4f}"
            ],
            **base,
        )
    return Decision(
        action="keep",
        reasons=[
            f"challenger mean MASE {mean_new:.4f} does not beat champion v{champion_version} "
            f"{mean_champ:.4f} by the required {gates.min_improvement:.1%}"
        ],
        **base,
    )
