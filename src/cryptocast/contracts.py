"""The contracts, defined once: OHLCV frame, forecast frame, decision record, HTTP I/O.

Steps, the serving wrapper and the tests all import from here.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = ("pair", "timestamp", *PRICE_COLUMNS, "volume")
# origin: open time of the last candle the forecast is made from; timestamp: the target
FORECAST_COLUMNS = (
    "pair",
    "origin",
    "timestamp",
    "step",
    "forecast",
    "lower",
    "upper",
    "model_version",
)


class ContractError(ValueError):
    """A frame does not follow its contract (missing columns, wrong types)."""


def to_ohlcv(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` in the OHLCV contract: long format, one row per (pair, timestamp).

    ``timestamp`` is the candle's open time as timezone-aware UTC; prices and volume are
    float64; rows are sorted by pair then time. Duplicates and gaps are *not* touched here
    (that is validation's job, which reports them).
    """
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"OHLCV frame is missing columns {missing}; has {list(frame.columns)}")
    out = frame.loc[:, list(OHLCV_COLUMNS)].copy()
    ts = out["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_any_dtype(ts):
            raise ContractError("OHLCV timestamps must be timezone-aware (UTC), got naive")
        ts = pd.to_datetime(ts, utc=True)
    out["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    out["pair"] = out["pair"].astype(str)
    for col in (*PRICE_COLUMNS, "volume"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out.sort_values(["pair", "timestamp"], kind="stable").reset_index(drop=True)


def pair_slug(pair: str) -> str:
    """File-system and URL friendly name: ``BTC/USDT`` -> ``BTC-USDT``."""
    return pair.replace("/", "-")


def forecast_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a frame in the forecast contract (used by serving, plots and storage)."""
    frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
    for col in ("origin", "timestamp"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


class PairDecision(BaseModel):
    pair: str
    challenger: str  # the candidate that would be served: the best learned one, or naive
    passed_gate: bool  # the best learned candidate beat the naive within the gate
    mase: float  # the challenger's MASE
    naive_mase: float
    mase_ratio: float  # best learned candidate's MASE / naive MASE
    champion_mase: float | None = None
    reasons: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    """What evaluate decided and why; deploy acts on this and nothing else."""

    action: Literal["promote", "keep", "reject"]
    granularity: str
    reasons: list[str]
    pairs: list[PairDecision]
    champion_version: str | None = None
    challenger_mean_mase: float
    champion_mean_mase: float | None = None
    any_pair_passed: bool

    def summary(self) -> str:
        lines = [f"decision: {self.action.upper()} ({self.granularity})"]
        lines += [f"  - {r}" for r in self.reasons]
        for p in self.pairs:
            champ = "" if p.champion_mase is None else f", champion MASE {p.champion_mase:.4f}"
            lines.append(
                f"  {p.pair}: serve {p.challenger} (MASE {p.mase:.4f}, naive {p.naive_mase:.4f}"
                f"{champ}); {'; '.join(p.reasons)}"
            )
        return "\n".join(lines)


class RequestError(ValueError):
    """A forecast request the model cannot answer (HTTP 400, with this message)."""


# The served model's input: one row per request (``dataframe_records``). ``candles`` is
# optional: a JSON array of OHLCV records (timestamp, open, high, low, close, volume) that
# continue the model's history; the forecast is then made from the last of them.
REQUEST_EXAMPLE = pd.DataFrame([{"pair": "BTC/USDT", "horizon": 3}])
