"""The bodies of the train and evaluate steps, as plain functions on plain data.

``steps/`` call these; ``make bench`` calls them without ZenML to measure the overhead.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from cryptocast import failpoints
from cryptocast.config import Settings
from cryptocast.evaluation import score
from cryptocast.forecasting import Forecaster, interval

log = logging.getLogger(__name__)


class Candidates(dict[str, dict[str, Forecaster]]):
    """pair -> candidate name -> fitted forecaster (its own type, so the ZenML adapter can
    give it a materializer that uses each model's own save/load)."""


def close_series(clean: pd.DataFrame, pair: str) -> pd.Series:
    """The close prices of ``pair``, indexed by candle open time (UTC)."""
    g = clean[clean["pair"] == pair]
    if g.empty:
        raise KeyError(f"no candles for {pair}")
    return pd.Series(g["close"].to_numpy(), index=pd.DatetimeIndex(g["timestamp"]), name=pair)


def train_candidates(clean: pd.DataFrame, cfg: Settings) -> Candidates:
    """Fit every configured candidate for every pair on the candles before the window."""
    out = Candidates()
    for pair in cfg.pairs:
        train = close_series(clean, pair).iloc[: -cfg.evaluation.window]
        out[pair] = {}
        for name, spec in cfg.candidates.items():
            t0 = time.perf_counter()
            fc = Forecaster.build(name, spec.kind, spec.params, cfg.horizon, cfg.seed)
            out[pair][name] = fc.fit(train)
            failpoints.hit("train.fit")
            log.info(
                "train %s %-9s fitted on %d candles in %.1fs",
                pair,
                name,
                len(train),
                time.perf_counter() - t0,
            )
    return out


def backtest_forecaster(fc: Forecaster, close: pd.Series, cfg: Settings) -> pd.DataFrame:
    """Rolling-origin backtest of ``fc`` on the evaluation window, with intervals."""
    ev = cfg.evaluation
    bt = fc.backtest(close, window=ev.window, stride=ev.stride)
    lower, upper = [], []
    for origin, g in bt.groupby("origin", sort=False):
        history = close.loc[:origin]
        lo, hi = interval(
            g["forecast"].to_numpy(), history, width=ev.interval, lookback=ev.interval_lookback
        )
        lower.extend(lo)
        upper.extend(hi)
    return bt.assign(lower=lower, upper=upper)


def evaluate_candidates(
    clean: pd.DataFrame, candidates: Candidates, cfg: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest every candidate; return (scores, backtests), one row per (pair, candidate)
    in ``scores`` and per (pair, candidate, origin, step) in ``backtests``."""
    rows, frames = [], []
    for pair, models in candidates.items():
        close = close_series(clean, pair)
        insample = close.iloc[: -cfg.evaluation.window].to_numpy()
        for name, fc in models.items():
            t0 = time.perf_counter()
            bt = backtest_forecaster(fc, close, cfg)
            metrics = score(bt, insample)
            rows.append({"pair": pair, "candidate": name, **metrics})
            frames.append(bt.assign(pair=pair, candidate=name))
            log.info(
                "backtest %s %-9s MASE %.4f sMAPE %.3f (%d origins, %.1fs)",
                pair,
                name,
                metrics["mase"],
                metrics["smape"],
                metrics["n_forecasts"],
                time.perf_counter() - t0,
            )
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)


def rescore(clean: pd.DataFrame, forecasters: dict[str, Forecaster], cfg: Settings) -> pd.DataFrame:
    """Score already-fitted forecasters (the champion's) on this run's window."""
    rows = []
    for pair, fc in forecasters.items():
        if pair not in cfg.pairs:
            continue
        close = close_series(clean, pair)
        bt = backtest_forecaster(fc, close, cfg)
        rows.append({"pair": pair, **score(bt, close.iloc[: -cfg.evaluation.window].to_numpy())})
    return pd.DataFrame(rows, columns=["pair", "mase", "smape", "mae", "coverage", "n_forecasts"])
