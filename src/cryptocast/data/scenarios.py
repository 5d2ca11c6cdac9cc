"""What-if data for the monitoring demo: the same candles, with the ones after a date
given a shifted distribution (returns scaled, volume scaled).
``cryptocast shift-data`` writes the result as canonical CSV files (``DATA=files``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.contracts import pair_slug, to_ohlcv

# Written beside what-if files; a files run whose directory holds it is a "scenario" run.
MARKER = "SCENARIO.json"


def scenario_of(directory: Path) -> dict | None:
    """The what-if settings :func:`write_shifted` left in ``directory``, if any."""
    path = Path(directory) / MARKER
    return json.loads(path.read_text()) if path.is_file() else None


def shifted(
    candles: pd.DataFrame,
    *,
    after: pd.Timestamp,
    return_scale: float = 1.0,
    volume_scale: float = 1.0,
) -> pd.DataFrame:
    """OHLCV candles whose one-step log returns after ``after`` are multiplied by
    ``return_scale`` and whose volume is multiplied by ``volume_scale``; candles up to
    ``after`` are unchanged. Open, high and low move with the close (each candle is scaled
    by one factor), so OHLC stays consistent."""
    if return_scale <= 0 or volume_scale <= 0:
        raise ValueError("return_scale and volume_scale must be positive")
    out = []
    for _, g in to_ohlcv(candles).groupby("pair", sort=False):
        g = g.sort_values("timestamp").reset_index(drop=True)
        later = (g["timestamp"] > after).to_numpy()
        log_close = np.log(g["close"].to_numpy())
        steps = np.diff(log_close, prepend=log_close[0])
        steps[later] *= return_scale
        factor = np.exp(log_close[0] + np.cumsum(steps) - log_close)  # new close / old close
        factor[~later] = 1.0
        g[["open", "high", "low", "close"]] = g[["open", "high", "low", "close"]].mul(
            factor, axis=0
        )
        g.loc[later, "volume"] *= volume_scale
        out.append(g)
    return to_ohlcv(pd.concat(out, ignore_index=True))


@dataclass(frozen=True)
class ShiftedFile:
    """One file :func:`write_shifted` wrote, and how much its candles moved."""

    pair: str
    path: Path
    candles: int
    shifted: int
    return_std_before: float
    return_std_after: float

    def line(self, after: pd.Timestamp) -> str:
        """What was written, in one line for the CLI: candles shifted after ``after``, the return
        deviation before and after, the path."""
        return (
            f"{self.pair}: {self.candles} candles, {self.shifted} after {after} "
            f"(return std {self.return_std_before:.4f} -> {self.return_std_after:.4f}) -> "
            f"{self.path}"
        )


def write_shifted(
    candles: pd.DataFrame,
    out: Path,
    *,
    after: pd.Timestamp,
    return_scale: float = 1.0,
    volume_scale: float = 1.0,
) -> list[ShiftedFile]:
    """:func:`shifted` candles written to ``out/<PAIR>.csv`` (canonical columns, ISO UTC
    timestamps), one file per pair, and the :data:`MARKER` file that makes runs on them
    what-if data (they never replace a champion trained on real data)."""
    frame = shifted(candles, after=after, return_scale=return_scale, volume_scale=volume_scale)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = {"after": str(after), "return_scale": return_scale, "volume_scale": volume_scale}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    written = []
    for pair, g in frame.groupby("pair"):
        path = out / f"{pair_slug(pair)}.csv"
        g.assign(timestamp=g["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
            path, index=False
        )
        r = np.log(g["close"]).diff()
        later = g["timestamp"] > after
        written.append(
            ShiftedFile(
                pair=pair,
                path=path,
                candles=len(g),
                shifted=int(later.sum()),
                return_std_before=float(r[~later].std()),
                return_std_after=float(r[later].std()),
            )
        )
    return written
