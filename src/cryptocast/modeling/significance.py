"""Is one forecaster really better than another? The Diebold-Mariano test, as pure functions.

The loss of a forecast made at one origin is its mean absolute error over the horizon,
scaled by the pair's in-sample naive MAE (MASE's loss), so pairs of very different price
levels can be pooled. ``d_t`` is the loss of model A minus the loss of model B at origin
``t``; A is better when the mean of ``d`` is negative.

* Consecutive origins overlap when the stride is shorter than the horizon, so ``d`` is
  autocorrelated up to ``ceil(horizon / stride) - 1`` lags: the long-run variance adds
  those autocovariances (with stride 1 this is the textbook ``h - 1`` lags of an
  ``h``-step forecast). If that sum is negative, Bartlett (Newey-West) weights are used.
* The Harvey-Leybourne-Newbold (1997) correction scales the statistic for small samples
  and compares it with Student's t with ``n - 1`` degrees of freedom.
* Pooled over the pairs of a granularity: ``d`` is first averaged across pairs at each
  origin (:func:`pooled`), so the test sees the pairs' correlation (BTC and ETH move
  together) instead of counting them as independent evidence.
* The p-value is one-sided: the probability of a mean difference at least this favourable
  to A if A and B were equally accurate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DMResult:
    """One Diebold-Mariano comparison of model A against model B."""

    n: int  # origins compared
    lags: int  # autocovariance lags in the long-run variance
    mean_diff: float  # mean loss of A minus mean loss of B (negative: A better)
    stat: float  # HLN-corrected DM statistic (negative: A better)
    p_value: float  # one-sided: P(this favourable to A | equal accuracy)
    variance: str  # "acf" or "bartlett" (the fallback when the acf sum is negative)

    def to_dict(self) -> dict[str, float | int | str]:
        """The result as a plain dict (for JSON and MLflow)."""
        return asdict(self)


def overlap_lags(horizon: int, stride: int) -> int:
    """Autocovariance lags of per-origin losses: origins ``stride`` apart share targets
    with the next ``ceil(horizon / stride) - 1`` origins."""
    return max(0, math.ceil(horizon / stride) - 1)


def _autocovariance(d: np.ndarray, k: int) -> float:
    c = d - d.mean()
    return float(np.dot(c[k:], c[: len(c) - k]) / len(d))


def dm_test(d: np.ndarray, lags: int) -> DMResult:
    """Diebold-Mariano test of ``d`` (loss of A minus loss of B, per origin) with the
    Harvey-Leybourne-Newbold correction for ``h = lags + 1``."""
    d = np.asarray(d, dtype=float)
    n, h = len(d), lags + 1
    if n < 2 or h > n:
        raise ValueError(f"the DM test needs at least {max(2, h)} origins, got {n}")
    mean = float(d.mean())
    gammas = [_autocovariance(d, k) for k in range(h)]
    variance, estimator = (gammas[0] + 2 * sum(gammas[1:])) / n, "acf"
    if variance < 0:
        weighted = sum((1 - k / h) * gammas[k] for k in range(1, h))
        variance = (gammas[0] + 2 * weighted) / n
        estimator = "bartlett"
    if variance <= 0:  # identical losses at every origin: no evidence either way
        return DMResult(n, lags, mean, 0.0, 0.5 if mean == 0 else float(mean > 0), estimator)
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = hln * mean / math.sqrt(variance)
    from scipy import stats  # imported when a test is run, not by every importer

    return DMResult(n, lags, mean, stat, float(stats.t.cdf(stat, df=n - 1)), estimator)


def origin_losses(backtest: pd.DataFrame, scale: float) -> pd.Series:
    """Per origin, the mean absolute error over the horizon divided by ``scale`` (the
    pair's in-sample naive MAE). ``backtest`` has columns origin, actual, forecast."""
    err = (backtest["actual"] - backtest["forecast"]).abs() / scale
    return err.groupby(backtest["origin"]).mean().sort_index()


def loss_differential(a: pd.Series, b: pd.Series) -> pd.Series:
    """``a - b`` on the origins both forecast from (they share the backtest window)."""
    common = a.index.intersection(b.index)
    if common.empty:
        raise ValueError("the two backtests have no forecast origin in common")
    return a.loc[common] - b.loc[common]


def pooled(differentials: dict[str, pd.Series]) -> pd.Series:
    """The cross-pair mean of the loss differentials, origin by origin.

    Pairs are aligned by their origins counted back from the end of each window: the same
    instants when the pairs' data end together (as live data does), and still paired
    one-to-one when files end on different dates. The pooled series is as long as the
    shortest pair's."""
    aligned = {
        p: d.sort_index().iloc[::-1].reset_index(drop=True) for p, d in differentials.items()
    }
    frame = pd.concat(aligned, axis=1).dropna()
    if frame.empty:
        raise ValueError("no pair has a loss differential to pool")
    return frame.mean(axis=1).iloc[::-1].reset_index(drop=True)


def bonferroni(p_value: float, comparisons: int) -> float:
    """The p-value of the best of ``comparisons`` candidates chosen on the same window
    (Bonferroni, which is Holm's first step: conservative, valid under any dependence)."""
    return min(1.0, p_value * max(1, comparisons))
