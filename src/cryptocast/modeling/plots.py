"""Plots people would rather look at than read: forecast vs actual per pair (backtest and
live), and live error over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def _band(ax, frame: pd.DataFrame, x: str, **style) -> None:
    """The forecast interval (``lower``..``upper``) of ``frame`` against column ``x``."""
    ax.fill_between(frame[x], frame["lower"], frame["upper"], **style)


def _save(fig, path: Path) -> Path:
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def forecast_vs_actual(
    backtests: pd.DataFrame, pair: str, candidates: list[str], path: Path, *, title: str = ""
) -> Path:
    """Backtest window of ``pair``: actual close, each candidate's forecasts, and the
    interval of the first candidate (the challenger)."""
    bt = backtests[backtests["pair"] == pair]
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    first = bt[bt["candidate"] == candidates[0]].sort_values("target_time")
    actual = first.drop_duplicates("target_time")
    ax.plot(actual["target_time"], actual["actual"], color="black", lw=1.3, label="actual")
    _band(ax, first, "target_time", color="tab:blue", alpha=0.15, label=f"{candidates[0]} interval")
    for i, name in enumerate(candidates):
        g = bt[bt["candidate"] == name]
        for j, (_, path_) in enumerate(g.groupby("origin")):
            ax.plot(
                path_["target_time"],
                path_["forecast"],
                color=f"C{i}",
                lw=1,
                label=name if j == 0 else None,
            )
    ax.set_title(title or f"{pair}: rolling-origin backtest")
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def live_forecasts(scored: pd.DataFrame, pair: str, path: Path, *, title: str = "") -> Path:
    """The champion's stored forecasts for ``pair`` against what happened (top), and the
    absolute error of each forecast over time (bottom). ``scored``:
    ``cryptocast.observability.monitoring.scored_forecasts``."""
    g = scored[scored["pair"] == pair].sort_values("target_time")
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6), dpi=110, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    actual = g.drop_duplicates("target_time")
    top.plot(actual["target_time"], actual["close"], color="black", lw=1.3, label="actual")
    for i, (_, path_) in enumerate(g.groupby("origin")):
        first = i == 0  # one legend entry for all forecast paths
        label = "forecast" if first else None
        top.plot(path_["target_time"], path_["forecast"], color="C0", lw=1, label=label)
        label = "interval" if first else None
        _band(top, path_, "target_time", color="C0", alpha=0.12, label=label)
    top.set_ylabel("close")
    top.set_title(title or f"{pair}: live forecasts of the champion")
    top.legend(loc="upper left", fontsize=8)
    err = (g["close"] - g["forecast"]).abs()
    bottom.plot(g["target_time"], err, ".", color="C3", ms=3, label="|error|")
    bottom.plot(
        g["target_time"], err.expanding().mean(), color="C3", lw=1.2, label="mean |error| so far"
    )
    bottom.set_ylabel("absolute error")
    bottom.legend(loc="upper left", fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def calibration(
    backtests: pd.DataFrame,
    pair: str,
    candidates: list[str],
    levels: list[float],
    width: float,
    path: Path,
    *,
    title: str = "",
) -> Path:
    """Are the quantiles honest? Left: coverage of the central interval by step against
    its nominal width (and the uncalibrated Gaussian band's, for the first candidate);
    right: reliability diagram, the share of actuals below each quantile against its
    level (a calibrated forecast sits on the diagonal)."""
    from cryptocast.modeling import uncertainty

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for i, cand in enumerate(candidates):
        g = backtests[(backtests["pair"] == pair) & (backtests["candidate"] == cand)]
        by_step = uncertainty.interval_coverage_by_step(g)
        left.plot(by_step.index, by_step.to_numpy(), marker="o", ms=3, label=cand)
        if i == 0:
            gauss = uncertainty.interval_coverage_by_step(
                g.assign(lower=g["gaussian_lower"], upper=g["gaussian_upper"])
            )
            left.plot(gauss.index, gauss.to_numpy(), ls=":", color="gray",
                      label=f"{cand}, Gaussian band")  # fmt: skip
        observed = uncertainty.coverage_by_step(g, levels).mean()
        right.plot(levels, observed.to_numpy(), marker="o", label=cand)
    left.axhline(width, color="black", lw=1, ls="--", label=f"nominal {width:.0%}")
    left.set_xlabel("step ahead")
    left.set_ylabel("share inside lower..upper")
    left.set_ylim(0, 1)
    left.legend(loc="lower left", fontsize=8)
    right.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="calibrated")
    right.set_xlabel("quantile level")
    right.set_ylabel("share of actuals below the quantile")
    right.legend(loc="upper left", fontsize=8)
    fig.suptitle(title or f"{pair}: calibration")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
