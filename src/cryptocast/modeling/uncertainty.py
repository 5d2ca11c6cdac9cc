"""Calibrated quantile forecasts and how to judge them, as pure functions.

**Calibration (normalised split conformal, per horizon step).** A forecast made at
origin ``o`` for step ``k`` has the score

    s = log(actual / forecast) / (sigma_o * sqrt(k))

where ``sigma_o`` is the exponentially weighted volatility of the one-step log returns up
to ``o`` (crypto volatility clusters, so the band breathes with it). The quantile
``q_k(tau)`` of the scores of step ``k`` over a *calibration window* turns any candidate's
point path into quantiles:

    Q_k(tau) = forecast_k * exp(sigma_o * sqrt(k) * q_k(tau))

The calibration window always precedes the forecast it calibrates (rolling split
conformal): a served model uses the scores of the ``calibration_window`` candles before
its origin, and the backtest scores exactly that, origin by origin: each forecast of the
evaluation window is calibrated on the forecasts whose targets were already observed at
its origin, within the window before it (never on its own or later outcomes). Quantiles
use the finite-sample conformal rank (``ceil((n + 1) tau)`` for the upper tail).

**Judging.** Coverage per level and step (the share of actuals below each quantile, and
inside the central interval), the interval (Winkler) score, the pinball loss averaged over
the levels, and Kupiec's proportion-of-failures test of the central interval's coverage.
Scores in price units are divided by the pair's in-sample naive MAE (as MASE is), so pairs
of different price levels can be compared and pooled.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

Table = dict[str, list[float]]  # level (as text, e.g. "0.05") -> score quantile per step


def level_key(level: float) -> str:
    """The text form of a level, used as a JSON key and in column names: 0.05 -> '0.05'."""
    return f"{level:g}"


def qcol(level: float) -> str:
    """Column of a frame holding the ``level`` quantile: 0.05 -> 'q0.05'."""
    return f"q{level_key(level)}"


def volatility(close: pd.Series, lookback: int) -> pd.Series:
    """Per candle: std of the ``lookback`` one-step log returns ending at it."""
    return np.log(close).diff().rolling(lookback).std()


def ewma_volatility(close: pd.Series, halflife: float) -> pd.Series:
    """Per candle: exponentially weighted RMS of the one-step log returns up to it
    (RiskMetrics-style; the mean return is taken as zero)."""
    r2 = np.log(close).diff() ** 2
    return np.sqrt(r2.ewm(halflife=halflife, min_periods=int(halflife)).mean())


def scores(backtest: pd.DataFrame, sigma: pd.Series) -> pd.Series:
    """Normalised conformal score of each backtest row (origin, step, forecast, actual)."""
    s = sigma.reindex(backtest["origin"]).to_numpy()
    ratio = np.log(backtest["actual"].to_numpy() / backtest["forecast"].to_numpy())
    return pd.Series(ratio / (s * np.sqrt(backtest["step"].to_numpy())), index=backtest.index)


def conformal_quantile(values: np.ndarray, level: float) -> float:
    """The split-conformal ``level`` quantile of ``values`` (finite-sample rank)."""
    return conformal_quantiles(values, [level])[0]


def conformal_quantiles(values: np.ndarray, levels: list[float]) -> list[float]:
    """:func:`conformal_quantile` at each of ``levels`` (one sort)."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        raise ValueError("no calibration scores")
    out = []
    for level in levels:
        # upper tail: the ceil((n+1) level)-th smallest; lower tail: the mirror image
        rank = math.ceil((n + 1) * level) if level >= 0.5 else math.floor((n + 1) * level)
        out.append(float(v[min(max(rank, 1), n) - 1]))
    return out


def calibrate(rows: pd.DataFrame, levels: list[float], horizon: int) -> Table:
    """Score quantiles per level and step from ``rows`` (columns step, score)."""
    table: Table = {}
    by_step = {k: g["score"].to_numpy() for k, g in rows.groupby("step")}
    missing = [k for k in range(1, horizon + 1) if k not in by_step]
    if missing:
        raise ValueError(f"the calibration window has no forecast for steps {missing}")
    per_step = [conformal_quantiles(by_step[k], levels) for k in range(1, horizon + 1)]
    for j, level in enumerate(levels):
        table[level_key(level)] = [q[j] for q in per_step]
    return table


def spread(sigma: float | np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``sigma * sqrt(k)``: the random-walk scale of the log error ``k`` steps ahead."""
    return np.asarray(sigma, float) * np.sqrt(np.asarray(steps, float))


def quantile_paths(
    point: np.ndarray, scale: np.ndarray, score_quantiles: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Level -> quantile forecasts for point forecasts ``point`` whose error scale is
    ``scale`` (:func:`spread`), from the score quantiles of each forecast's step."""
    return {
        level: np.asarray(point, float) * np.exp(np.asarray(scale) * np.asarray(q, float))
        for level, q in score_quantiles.items()
    }


def at_steps(table: Table, steps: np.ndarray) -> dict[str, np.ndarray]:
    """The score quantiles of ``table`` for forecasts at ``steps`` (1-based)."""
    idx = np.asarray(steps, int) - 1
    return {level: np.asarray(q, float)[idx] for level, q in table.items()}


def _ns(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def rolling(
    past: pd.DataFrame, rows: pd.DataFrame, window: pd.Timedelta, levels: list[float]
) -> dict[str, np.ndarray]:
    """Per row of ``rows`` (origin, step): the score quantiles calibrated on the forecasts
    of ``past`` (target_time, step, score) of the same step whose targets were observed
    by the row's origin, within ``window`` before it: what a model served at that origin
    would have used (:func:`calibrate` on the latest window)."""
    out = {level_key(q): np.full(len(rows), np.nan) for q in levels}
    for k, g in past.groupby("step"):
        g = g.sort_values("target_time")
        times = _ns(g["target_time"])
        values = g["score"].to_numpy()
        at = np.flatnonzero(rows["step"].to_numpy() == k)
        origins = _ns(rows["origin"])[at]
        lo = np.searchsorted(times, origins - window.value, side="right")
        hi = np.searchsorted(times, origins, side="right")
        keys = [level_key(q) for q in levels]
        for i, a, b in zip(at, lo, hi, strict=True):
            for key, value in zip(keys, conformal_quantiles(values[a:b], levels), strict=True):
                out[key][i] = value
    return out


def gaussian_band(
    point: np.ndarray, scale: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """The uncalibrated Gaussian random-walk band ``point * exp(+-z * scale)``: what
    models trained before calibrated quantiles serve, and the reference the calibrated
    interval is measured against."""
    band = np.exp(NormalDist().inv_cdf(0.5 + width / 2) * np.asarray(scale, float))
    return np.asarray(point, float) / band, np.asarray(point, float) * band


# -- judging --------------------------------------------------------------------------
def winkler(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, width: float) -> float:
    """Mean interval score of central intervals of nominal ``width``: the interval's
    length plus ``2 / alpha`` times how far the actual fell outside it."""
    a, lo, hi = (np.asarray(x, float) for x in (actual, lower, upper))
    alpha = 1 - width
    penalty = (2 / alpha) * (np.clip(lo - a, 0, None) + np.clip(a - hi, 0, None))
    return float(np.mean(hi - lo + penalty))


def pinball(actual: np.ndarray, quantile: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of the ``level`` quantile forecasts."""
    diff = np.asarray(actual, float) - np.asarray(quantile, float)
    return float(np.mean(np.maximum(level * diff, (level - 1) * diff)))


def kupiec(hits: np.ndarray, width: float) -> float:
    """p-value of Kupiec's proportion-of-failures test that the central interval of
    nominal ``width`` covers as often as it says (``hits``: actual inside, per forecast).
    It assumes independent hits; overlapping multi-step forecasts are not, so read it as
    a screen, with the coverage by step."""
    from scipy import special, stats  # only here: the model servers import this module

    h = np.asarray(hits, bool)
    n, x = len(h), int((~h).sum())
    p = 1 - width
    if n == 0:
        raise ValueError("no forecasts to test")

    def loglik(q: float) -> float:  # binomial log-likelihood (0 * log 0 = 0)
        return float(special.xlogy(x, q) + special.xlogy(n - x, 1 - q))

    lr = -2 * (loglik(p) - loglik(x / n))
    return float(stats.chi2.sf(max(lr, 0.0), df=1))


def quantile_metrics(
    backtest: pd.DataFrame, levels: list[float], width: float, scale: float
) -> dict[str, float]:
    """Coverage of the central interval, its interval score, the mean pinball loss and
    Kupiec's p-value of a backtest with quantile columns (``qcol(level)``) and
    ``lower``/``upper``; price-unit scores divided by ``scale``."""
    a = backtest["actual"].to_numpy()
    lo, hi = backtest["lower"].to_numpy(), backtest["upper"].to_numpy()
    hits = (a >= lo) & (a <= hi)
    return {
        "coverage": float(hits.mean()),
        "interval_score": winkler(a, lo, hi, width) / scale,
        "pinball": float(np.mean([pinball(a, backtest[qcol(q)], q) for q in levels])) / scale,
        "kupiec_p": kupiec(hits, width),
    }


def coverage_by_step(backtest: pd.DataFrame, levels: list[float]) -> pd.DataFrame:
    """Per step (rows) and level (columns): the share of actuals at or below the level's
    quantile; a calibrated forecast has the level itself in every cell."""
    out = {
        level_key(q): (backtest["actual"] <= backtest[qcol(q)]).groupby(backtest["step"]).mean()
        for q in levels
    }
    return pd.DataFrame(out).rename_axis("step")


def interval_coverage_by_step(backtest: pd.DataFrame) -> pd.Series:
    """Per step: the share of actuals inside ``lower``..``upper``."""
    inside = (backtest["actual"] >= backtest["lower"]) & (backtest["actual"] <= backtest["upper"])
    return inside.groupby(backtest["step"]).mean()
