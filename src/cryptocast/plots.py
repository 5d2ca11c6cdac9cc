"""Plots people would rather look at than read: forecast vs actual per pair."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd


def forecast_vs_actual(
    backtests: pd.DataFrame, pair: str, candidates: list[str], path: Path, *, title: str = ""
) -> Path:
    """Backtest window of ``pair``: actual close, each candidate's forecasts, and the
    interval of the first candidate (the challenger)."""
    import matplotlib

    matplotlib.use("Agg")

    bt = backtests[backtests["pair"] == pair]
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=110)
    first = bt[bt["candidate"] == candidates[0]].sort_values("timestamp")
    actual = first.drop_duplicates("timestamp")
    ax.plot(actual["timestamp"], actual["actual"], color="black", lw=1.3, label="actual")
    ax.fill_between(
        first["timestamp"],
        first["lower"],
        first["upper"],
        color="tab:blue",
        alpha=0.15,
        label=f"{candidates[0]} interval",
    )
    for i, name in enumerate(candidates):
        g = bt[bt["candidate"] == name]
        for j, (_, path_) in enumerate(g.groupby("origin")):
            ax.plot(
                path_["timestamp"],
                path_["forecast"],
                color=f"C{i}",
                lw=1,
                label=name if j == 0 else None,
            )
    ax.set_title(title or f"{pair}: rolling-origin backtest")
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
