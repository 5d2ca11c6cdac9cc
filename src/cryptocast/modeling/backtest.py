"""The bodies of the train and evaluate steps, as plain functions on plain data.

``steps/`` call these; ``make bench`` calls them without ZenML to measure the overhead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from cryptocast import failpoints, threads
from cryptocast.config import FitSection, central_levels
from cryptocast.contracts import pair_slug
from cryptocast.modeling import significance, uncertainty
from cryptocast.modeling.evaluation import naive_scale, score
from cryptocast.modeling.forecasting import Forecaster

log = logging.getLogger(__name__)


class Candidates(dict[str, dict[str, Forecaster]]):
    """pair -> candidate name -> fitted forecaster (its own type, so the ZenML adapter can
    give it a materializer that uses each model's own save/load)."""

    @classmethod
    def merge(cls, parts: Sequence[Candidates]) -> Candidates:
        """The fitted candidates of several fit steps, pair by pair."""
        out = cls()
        for part in parts:
            for pair, by_name in part.items():
                out.setdefault(pair, {}).update(by_name)
        return out


Scope = Literal["single", "multi", "all"]


@dataclass(frozen=True)
class Shard:
    """The work of one fit step: ``scope`` candidates of ``pairs`` (``single``: one model
    per pair; ``multi``: the multi-series candidates, fitted once on all ``pairs``)."""

    pairs: list[str]
    scope: Scope

    @property
    def step_id(self) -> str:
        """The fit step's name in the pipeline run (``fit_btc_usdt_eth_usdt``,
        ``fit_btc_usdt_and_7_more``, ``fit_global``)."""
        if self.scope == "multi":
            return "fit_global"
        slugs = [pair_slug(p).lower().replace("-", "_") for p in self.pairs]
        if len(slugs) <= 2:
            return "_".join(["fit", *slugs])
        return f"fit_{slugs[0]}_and_{len(slugs) - 1}_more"


def shards(cfg: FitSection) -> list[Shard]:
    """The fit steps of a run: the single-series candidates in groups of
    ``scale.pairs_per_step`` pairs, and one step for the multi-series candidates."""
    out = []
    if any(not Forecaster.multi_series(c.kind) for c in cfg.candidates.values()):
        out += [Shard(group, "single") for group in cfg.scale.shards(cfg.pairs)]
    if any(Forecaster.multi_series(c.kind) for c in cfg.candidates.values()):
        out.append(Shard(list(cfg.pairs), "multi"))
    return out


def limit_threads(cfg: FitSection) -> int:
    """Cap this process's numeric libraries at the thread budget of ``cfg.scale``."""
    s = cfg.scale
    return threads.limit(threads.per_worker(s.threads, s.workers, threads.available_cpus()))


def close_series(clean: pd.DataFrame, pair: str, column: str = "close") -> pd.Series:
    """The close prices (or another ``column``) of ``pair``, indexed by candle open time
    (UTC)."""
    g = clean[clean["pair"] == pair]
    if g.empty:
        raise KeyError(f"no candles for {pair}")
    return pd.Series(g[column].to_numpy(), index=pd.DatetimeIndex(g["timestamp"]), name=pair)


def volume_series(clean: pd.DataFrame, pairs: list[str]) -> dict[str, pd.Series]:
    """The traded volume of each of ``pairs`` (past covariates), indexed like closes."""
    return {p: close_series(clean, p, "volume") for p in pairs}


def fit_cutoff(cfg: FitSection) -> int:
    """Candles held out of fitting: the calibration window, then the evaluation window."""
    return cfg.evaluation.window + cfg.evaluation.calibration_window


def train_candidates(
    clean: pd.DataFrame, cfg: FitSection, shard: Shard | None = None
) -> Candidates:
    """Fit the configured candidates of ``shard`` (default: every candidate of every
    pair) on the candles before the calibration and evaluation windows (a multi-series
    candidate: once, on all the shard's pairs)."""
    shard = shard or Shard(list(cfg.pairs), "all")
    out = Candidates({pair: {} for pair in shard.pairs})
    closes = {p: close_series(clean, p).iloc[: -fit_cutoff(cfg)] for p in shard.pairs}
    volumes = volume_series(clean, shard.pairs)
    for name, spec in cfg.candidates.items():
        t0 = time.perf_counter()
        multi = Forecaster.multi_series(spec.kind)
        if shard.scope != "all" and multi != (shard.scope == "multi"):
            continue
        if multi:
            fitted = Forecaster.fit_many(
                name, spec.kind, spec.params, cfg.horizon, cfg.seed, closes, volumes
            )
            failpoints.hit("train.fit")
            log.info("train %-9s fitted on %d pairs in %.1fs", name, len(closes),
                     time.perf_counter() - t0)  # fmt: skip
            for pair, fc in fitted.items():
                out[pair][name] = fc
            continue
        for pair, train in closes.items():
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


@dataclass(frozen=True)
class Backtest:
    """One forecaster's rolling-origin backtest of one pair."""

    rows: pd.DataFrame  # evaluation window: origin, step, forecast, actual, quantiles, bands
    served: uncertainty.Table  # calibration from the latest window, for serving
    scale: float  # in-sample naive MAE (MASE's denominator) of the fitting window


def backtest_forecaster(
    fc: Forecaster, close: pd.Series, cfg: FitSection, covariates: pd.DataFrame | None = None
) -> Backtest:
    """Backtest ``fc`` over the calibration and evaluation windows, the evaluation
    window's forecasts with rolling conformal quantiles (:func:`uncertainty.rolling`: each
    calibrated on the outcomes known at its origin), and the calibration a served model
    uses from the end of ``close``."""
    ev, n = cfg.evaluation, len(close)
    bt = fc.backtest(close, window=fit_cutoff(cfg), stride=ev.stride, covariates=covariates)
    sigma = uncertainty.ewma_volatility(close, ev.volatility_halflife)
    bt["score"] = uncertainty.scores(bt, sigma)
    rows = bt[bt["origin"] >= close.index[n - ev.window - 1]].drop(columns="score")
    rows = rows.reset_index(drop=True)
    calibration = pd.Timedelta(cfg.freq) * ev.calibration_window
    steps = rows["step"].to_numpy()
    scale = uncertainty.spread(sigma.reindex(rows["origin"]).to_numpy(), steps)
    point = rows["forecast"].to_numpy()
    quantiles = uncertainty.rolling(bt, rows, calibration, ev.quantiles)
    paths = uncertainty.quantile_paths(point, scale, quantiles)
    served = uncertainty.calibrate(
        bt[bt["target_time"] > close.index[-1] - calibration], ev.quantiles, cfg.horizon
    )
    sigma_ref = uncertainty.volatility(close, ev.interval_lookback)
    scale_ref = uncertainty.spread(sigma_ref.reindex(rows["origin"]).to_numpy(), steps)
    rows = rows.assign(**{uncertainty.qcol(float(q)): v for q, v in paths.items()})
    lo, hi = central_levels(ev.interval)
    g_lo, g_hi = uncertainty.gaussian_band(point, scale_ref, ev.interval)
    rows = rows.assign(
        lower=rows[uncertainty.qcol(lo)],
        upper=rows[uncertainty.qcol(hi)],
        gaussian_lower=g_lo,
        gaussian_upper=g_hi,
    )
    return Backtest(rows, served, naive_scale(close.iloc[: -fit_cutoff(cfg)].to_numpy()))


@dataclass(frozen=True)
class Evaluation:
    """Every candidate's backtest of every pair."""

    scores: pd.DataFrame  # one row per (pair, candidate): metrics
    backtests: pd.DataFrame  # one row per (pair, candidate, origin, step)
    losses: pd.DataFrame  # one row per (pair, candidate, origin): scaled loss (DM tests)
    served: dict[str, dict[str, uncertainty.Table]]  # pair -> candidate -> calibration


def _evaluate(models: dict[str, dict[str, Forecaster]], clean: pd.DataFrame, cfg: FitSection):
    ev = cfg.evaluation
    rows, frames, losses = [], [], []
    served: dict[str, dict[str, uncertainty.Table]] = {}
    closes = {p: close_series(clean, p) for p in clean["pair"].unique()}
    volumes = volume_series(clean, list(closes))
    for pair, by_name in models.items():
        close = closes[pair]
        for name, fc in by_name.items():
            t0 = time.perf_counter()
            cov = fc.covariate_frame(pair, closes, volumes)
            bt = backtest_forecaster(fc, close, cfg, cov)
            metrics = score(bt.rows, bt.scale, levels=ev.quantiles, width=ev.interval)
            rows.append({"pair": pair, "candidate": name, **metrics})
            frames.append(bt.rows.assign(pair=pair, candidate=name))
            loss = significance.origin_losses(bt.rows, bt.scale)
            losses.append(
                pd.DataFrame({"pair": pair, "candidate": name, "origin": loss.index, "loss": loss})
            )
            served.setdefault(pair, {})[name] = bt.served
            log.info(
                "backtest %s %-9s MASE %.4f coverage %.3f interval score %.3f (%d origins, %.1fs)",
                pair,
                name,
                metrics["mase"],
                metrics["coverage"],
                metrics["interval_score"],
                metrics["n_forecasts"],
                time.perf_counter() - t0,
            )
    return Evaluation(
        pd.DataFrame(rows),
        pd.concat(frames, ignore_index=True),
        pd.concat(losses, ignore_index=True),
        served,
    )


def evaluate_candidates(clean: pd.DataFrame, candidates: Candidates, cfg: FitSection) -> Evaluation:
    """Backtest every candidate of every pair on this run's windows."""
    return _evaluate(candidates, clean, cfg)


def fit_and_backtest(
    clean: pd.DataFrame, cfg: FitSection, shard: Shard | None = None
) -> tuple[Candidates, Evaluation]:
    """Within the thread budget of ``cfg.scale``: fit ``shard``'s candidates (default:
    all of them) and backtest them. A fit step's body; plain runs call it whole."""
    limit_threads(cfg)
    candidates = train_candidates(clean, cfg, shard)
    return candidates, evaluate_candidates(clean, candidates, cfg)


def merge_evaluations(parts: Sequence[Evaluation], cfg: FitSection) -> Evaluation:
    """The backtests of several fit steps as one evaluation, rows in the config's order
    of pairs and candidates (as one step would have made them)."""
    served: dict[str, dict[str, uncertainty.Table]] = {}
    for part in parts:
        for pair, by_name in part.served.items():
            served.setdefault(pair, {}).update(by_name)
    order = {"pair": list(cfg.pairs), "candidate": list(cfg.candidates)}

    def cat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frame = pd.concat(frames, ignore_index=True)
        rank = {k: frame[k].map({v: i for i, v in enumerate(vals)}) for k, vals in order.items()}
        keys = pd.DataFrame(rank).assign(row=range(len(frame)))
        return frame.loc[keys.sort_values(["pair", "candidate", "row"]).index].reset_index(
            drop=True
        )

    return Evaluation(
        cat([p.scores for p in parts]),
        cat([p.backtests for p in parts]),
        cat([p.losses for p in parts]),
        served,
    )


def rescore(
    clean: pd.DataFrame, forecasters: dict[str, Forecaster], cfg: FitSection, label: str
) -> Evaluation | None:
    """Backtest already-fitted forecasters (the champion's, one per pair, named ``label``)
    on this run's windows; pairs this run does not cover are left out, and None when it
    covers none of them (nothing to compare)."""
    models = {p: {label: fc} for p, fc in forecasters.items() if p in cfg.pairs}
    return _evaluate(models, clean, cfg) if models else None
