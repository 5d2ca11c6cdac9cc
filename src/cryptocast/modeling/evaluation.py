"""Backtest metrics and the tests between candidates, as pure functions.

Metrics over a rolling-origin backtest (all forecasts of all origins pooled):

* ``MASE``  = MAE / in-sample MAE of the one-step naive forecast (fitting window);
* ``sMAPE`` = 100 * mean(2|y - f| / (|y| + |f|));
* ``MAE``   = mean |y - f|;
* ``coverage``, ``interval_score``, ``pinball``, ``kupiec_p``: the calibrated quantiles
  (:mod:`cryptocast.modeling.uncertainty`); ``gaussian_interval_score``: the uncalibrated
  Gaussian band's interval score on the same forecasts, for reference.

The promotion decision (:mod:`cryptocast.delivery.decisions`) reads them with the
Diebold-Mariano tests of :func:`naive_tests` and :func:`versus`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast.modeling import significance, uncertainty

METRICS = ("mase", "smape", "mae", "coverage", "interval_score", "pinball", "kupiec_p")


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error of ``forecast`` against ``actual``."""
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric mean absolute percentage error, in percent (0 where actual and forecast are both
    0)."""
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


def score(
    backtest: pd.DataFrame, scale: float, *, levels: list[float], width: float
) -> dict[str, float]:
    """Metrics of one candidate's backtest (columns origin, actual, forecast, the quantile
    columns, lower/upper and gaussian_lower/upper); ``scale``: in-sample naive MAE."""
    a, f = backtest["actual"].to_numpy(), backtest["forecast"].to_numpy()
    gaussian = uncertainty.winkler(
        a, backtest["gaussian_lower"].to_numpy(), backtest["gaussian_upper"].to_numpy(), width
    )
    return {
        "mase": mae(a, f) / scale,
        "smape": smape(a, f),
        "mae": mae(a, f),
        **uncertainty.quantile_metrics(backtest, levels, width, scale),
        "gaussian_interval_score": gaussian / scale,
        "n_forecasts": int(backtest["origin"].nunique()),
    }


# -- tests of significance between candidates -------------------------------------
def loss_series(losses: pd.DataFrame, pair: str, candidate: str) -> pd.Series:
    """Per origin, ``candidate``'s loss for ``pair``."""
    g = losses[(losses["pair"] == pair) & (losses["candidate"] == candidate)]
    return pd.Series(g["loss"].to_numpy(), index=pd.DatetimeIndex(g["origin"]))


def versus(losses: pd.DataFrame, pair: str, a: str, b: str) -> pd.Series:
    """Per origin, candidate ``a``'s loss minus candidate ``b``'s for ``pair``."""
    return significance.loss_differential(
        loss_series(losses, pair, a), loss_series(losses, pair, b)
    )


def naive_tests(losses: pd.DataFrame, baseline: str, lags: int) -> pd.DataFrame:
    """The DM test of every candidate against ``baseline``, per pair and pooled over the
    pairs (one row per (pair, candidate); pair ``pooled`` for the pooled test)."""
    rows = []
    for cand in sorted(set(losses["candidate"]) - {baseline}):
        diffs = {p: versus(losses, p, cand, baseline) for p in sorted(set(losses["pair"]))}
        tests = {p: significance.dm_test(d, lags) for p, d in diffs.items()}
        tests["pooled"] = significance.dm_test(significance.pooled(diffs), lags)
        rows += [{"pair": p, "candidate": cand, **t.to_dict()} for p, t in tests.items()]
    return pd.DataFrame(rows)
