"""Monitoring, as pure functions: live accuracy of stored forecasts, drift of recent
candles against the champion's training window, and the decision to retrain.

* live accuracy: stored forecasts (``cryptocast.delivery.store``) joined with the candles that
  actually happened, per pair: MAE, MASE (scaled like the backtest: in-sample one-step
  naive MAE of the reference window), interval coverage, number of forecasts scored;
* drift, per pair and feature (one-step log return, log volume): the two-sample
  Kolmogorov-Smirnov statistic and p-value, and the population stability index (PSI) over
  the reference's quantile bins; ``drift_share`` = share of (pair, feature) that drifted;
* :func:`retrain_decision` turns both into ``retrain`` / ``ok`` with reasons.

Thresholds are keyword arguments; their defaults and meaning live in one place,
``cryptocast.config.MonitoringSettings``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast.contracts import MonitorDecision, Provenance, SourceInfo, pair_slug
from cryptocast.errors import UserError
from cryptocast.modeling.evaluation import naive_scale

FEATURES = ("log_return", "log_volume")


def split_at_origin(
    candles: pd.DataFrame, origins: dict[str, pd.Timestamp], reference_window: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, recent): per pair, the last ``reference_window`` candles up to the
    champion's origin (its last training candle) and every candle after it."""
    ref, new = [], []
    for pair, origin in origins.items():
        g = candles[candles["pair"] == pair]
        ref.append(g[g["timestamp"] <= origin].tail(reference_window))
        new.append(g[g["timestamp"] > origin])
    return (pd.concat(ref, ignore_index=True), pd.concat(new, ignore_index=True))


def features(candles: pd.DataFrame) -> pd.DataFrame:
    """Per-candle features whose distribution is watched (OHLCV contract in)."""
    out = []
    for pair, g in candles.sort_values("timestamp").groupby("pair"):
        out.append(
            pd.DataFrame(
                {
                    "pair": pair,
                    "timestamp": g["timestamp"].to_numpy(),
                    "log_return": np.log(g["close"]).diff().to_numpy(),
                    "log_volume": np.log1p(g["volume"].clip(lower=0)).to_numpy(),
                }
            ).iloc[1:]
        )
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(columns=["pair", "timestamp", *FEATURES])
    )


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``recent`` against ``reference``'s quantile bins."""
    reference = np.asarray(reference, float)[np.isfinite(reference)]
    recent = np.asarray(recent, float)[np.isfinite(recent)]
    if len(reference) < bins or len(recent) == 0:
        raise ValueError(f"PSI needs at least {bins} reference values and one recent value")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    new = np.histogram(recent, edges)[0] / len(recent)
    ref, new = np.clip(ref, eps, None), np.clip(new, eps, None)
    return float(np.sum((new - ref) * np.log(new / ref)))


def drift(
    reference: pd.DataFrame,
    recent: pd.DataFrame,
    *,
    psi_limit: float,
    ks_pvalue: float,
    min_recent: int,
) -> pd.DataFrame:
    """One row per (pair, feature): ks, ks_pvalue, psi, drifted (PSI above ``psi_limit`` or
    KS p-value below ``ks_pvalue``).

    ``reference`` and ``recent`` are OHLCV frames (the champion's training candles and the
    candles since). Pairs with fewer than ``min_recent`` recent values are left out."""
    from scipy.stats import ks_2samp  # 1 s of imports that status and the front door skip

    ref, new = features(reference), features(recent)
    rows = []
    for pair in sorted(set(ref["pair"]) & set(new["pair"])):
        for f in FEATURES:
            a = ref.loc[ref["pair"] == pair, f].dropna().to_numpy()
            b = new.loc[new["pair"] == pair, f].dropna().to_numpy()
            if len(b) < min_recent:
                continue
            ks = ks_2samp(a, b)
            value = psi(a, b)
            rows.append(
                {
                    "pair": pair,
                    "feature": f,
                    "ks": float(ks.statistic),
                    "ks_pvalue": float(ks.pvalue),
                    "psi": value,
                    "drifted": bool(value > psi_limit or ks.pvalue < ks_pvalue),
                }
            )
    return pd.DataFrame(rows, columns=["pair", "feature", "ks", "ks_pvalue", "psi", "drifted"])


def scored_forecasts(
    forecasts: pd.DataFrame, actual: pd.DataFrame, last: int | None = None
) -> pd.DataFrame:
    """Stored forecasts whose target time has happened, with the actual ``close``; with
    ``last``, only the ``last`` of them per pair (by target time)."""
    truth = actual[["pair", "timestamp", "close"]].rename(columns={"timestamp": "target_time"})
    f = forecasts.assign(target_time=pd.to_datetime(forecasts["target_time"], utc=True))
    scored = f.merge(truth, on=["pair", "target_time"], how="inner")
    if last is not None:
        scored = scored.sort_values("target_time", kind="stable").groupby("pair").tail(last)
    return scored.reset_index(drop=True)


def live_accuracy(scored: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Live MAE, MASE and interval coverage per pair.

    ``scored``: :func:`scored_forecasts` (stored forecasts with the actual ``close``);
    ``reference``: the candles that define MASE's scale (the champion's training window)."""
    rows = []
    for pair, g in scored.groupby("pair"):
        err = (g["close"] - g["forecast"]).abs()
        ref = reference.loc[reference["pair"] == pair].sort_values("timestamp")["close"]
        inside = (g["close"] >= g["lower"]) & (g["close"] <= g["upper"])
        rows.append(
            {
                "pair": pair,
                "n": len(g),
                "mae": float(err.mean()),
                "mase": float(err.mean() / naive_scale(ref.to_numpy())),
                "coverage": float(inside.mean()),
                "first_target": g["target_time"].min(),
                "last_target": g["target_time"].max(),
            }
        )
    return pd.DataFrame(
        rows, columns=["pair", "n", "mae", "mase", "coverage", "first_target", "last_target"]
    )


def retrain_decision(
    accuracy: pd.DataFrame,
    drifted: pd.DataFrame,
    *,
    max_live_mase: float,
    min_scored: int,
    drift_share: float,
) -> MonitorDecision:
    """Retrain when live accuracy or drift crosses its threshold; say which and by how much."""
    reasons = []
    judged = accuracy[accuracy["n"] >= min_scored]
    for row in judged.itertuples():
        if row.mase > max_live_mase:
            reasons.append(
                f"{row.pair}: live MASE {row.mase:.3f} > {max_live_mase} over {row.n} forecasts"
            )
    share = float(drifted["drifted"].mean()) if len(drifted) else 0.0
    if len(drifted) and share >= drift_share:
        which = [f"{r.pair}:{r.feature}" for r in drifted.itertuples() if r.drifted]
        reasons.append(f"drift share {share:.2f} >= {drift_share} ({', '.join(which)})")
    action = "retrain" if reasons else "ok"
    if not reasons:  # say what was judged: an OK on nothing is not a clean bill
        reasons = [
            "live accuracy within thresholds"
            if len(judged)
            else f"live accuracy not judged yet: no pair has {min_scored} scored forecasts",
            "drift within thresholds"
            if len(drifted)
            else "drift not checked: too few candles before or after the champion's origin "
            "to compare",
        ]
    return MonitorDecision(
        action=action,
        reasons=reasons,
        drift_share=share,
        live_mase={r.pair: float(r.mase) for r in accuracy.itertuples()},
    )


def live_metric_name(key: str, pair: str) -> str:
    """The MLflow metric of a pair's live figure ``key`` (``live_mase.BTC-USDT``): written by
    the monitoring pipeline, read by the exporter and the front door."""
    return f"{key}.{pair_slug(pair)}"


def live_from_metrics(
    metrics: dict[str, float],
    pairs: list[str] | tuple[str, ...],
    keys: tuple[str, ...] = ("live_mase", "live_coverage", "live_scored"),
) -> dict[str, dict[str, float]]:
    """Per pair, the live figures ``keys`` a monitoring run logged (pairs without any are
    left out)."""
    out = {}
    for pair in pairs:
        found = {k: metrics[name] for k in keys if (name := live_metric_name(k, pair)) in metrics}
        if found:
            out[pair] = found
    return out


class NothingToJudge(UserError, ValueError):
    """The candles cannot judge the champion (synthetic candles, a real-data champion)."""


def judgeable(champion: Provenance | None, version: str, source: SourceInfo) -> None:
    """Refuse to judge a champion trained on market data with synthetic candles (``auto``
    falling back offline, or ``DATA=sample``): live accuracy and drift would compare it with
    candles that never happened, and report nonsense as OK or RETRAIN."""
    data = Provenance.of_source(source, None)
    if data.kind != "sample" or champion is None or not champion.real:
        return
    why = " (DATA=auto fell back: the exchange is not reachable)" if data.fallback else ""
    raise NothingToJudge(
        f"these candles are synthetic sample data{why}, and champion v{version} was trained "
        f"on {champion.describe()}: monitoring judges the champion against what happened in "
        "the market, so it judges nothing here. Give it market candles: DATA=files "
        "DATA_DIR=... or DATA=binance"
    )
