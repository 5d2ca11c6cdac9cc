"""What-if data for the monitoring demo: the same candles, with the ones after a date
given a shifted distribution (returns scaled, volume scaled).
``run.py shift-data`` writes the result as canonical CSV files (``DATA=files``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast.contracts import to_ohlcv


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
