"""The front door's HTTP contract, typed: what a client sends and gets back.

Request models are built from the configured limits (``ServiceSettings`` and the
horizon), so the OpenAPI document states them and FastAPI enforces them: strict integers,
at most ``max_records`` records and ``max_candles`` candles per record."""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    create_model,
    field_validator,
)

from cryptocast.config import Settings


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Candle(_Model):
    """One OHLCV candle continuing the model's history (open time, UTC offset required)."""

    timestamp: AwareDatetime
    open: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    close: float = Field(gt=0, allow_inf_nan=False)
    volume: float = Field(ge=0, allow_inf_nan=False)


class Problem(BaseModel):
    """A refused request: what is wrong, where, and what to do."""

    detail: Any


class ForecastPoint(BaseModel):
    pair: str
    origin: str = Field(description="Open time of the last candle used (ISO 8601, UTC).")
    target_time: str = Field(description="Open time of the candle forecast (ISO 8601, UTC).")
    step: int = Field(description="Candles after the origin.")
    forecast: float
    lower: float = Field(description="Lower bound of the central interval (a quantile).")
    upper: float = Field(description="Upper bound of the central interval (a quantile).")
    quantiles: dict[str, float] = Field(
        default_factory=dict,
        description="Calibrated quantiles: level -> price, e.g. {'0.05': ..., '0.95': ...}. "
        "Empty for models trained before calibration (lower/upper are then a Gaussian band).",
        examples=[{"0.05": 61950.0, "0.1": 62410.5, "0.5": 63120.2, "0.9": 63800.7}],
    )

    @field_validator("quantiles", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        """Model servers send the quantiles as JSON text (one MLflow string column)."""
        return json.loads(value) if isinstance(value, str) else value


class ForecastResponse(BaseModel):
    model_name: str
    model_version: str
    forecasts: list[ForecastPoint]


class ServedRow(ForecastPoint):
    """A row of MLflow's ``/invocations`` answer (the model server's own columns)."""

    model_version: str
    model_name: str
    run_id: str


class InvocationsResponse(BaseModel):
    predictions: list[ServedRow]


class Health(BaseModel):
    status: str
    instance: str | None = Field(None, description="Which front door process answered.")


class VersionInfo(BaseModel):
    """What the front door serves, since when, and what the model was trained on."""

    granularity: str
    model_name: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    serving_since: str | None = Field(None, description="When this version began to answer.")
    upstream: str | None = Field(None, description="The model server answering now.")
    pairs: list[str] = Field(default_factory=list)
    trained: dict[str, Any] = Field(
        default_factory=dict, description="Data source, window and provenance of the model."
    )


class ModelCard(BaseModel):
    """What a person wants to know about the champion (the forecast app shows it)."""

    model_name: str
    model_version: str
    backtest: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per pair: candidate served, MASE, naive MASE."
    )
    live: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per pair: live MASE and coverage (last monitor run)."
    )
    history: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Per pair: the recent closes the model knows."
    )
    promotions: list[dict[str, Any]] = Field(
        default_factory=list, description="Every version: aliases, how and why promoted."
    )


def request_models(cfg: Settings) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ForecastRequest, InvocationsRequest) with this granularity's limits."""
    s = cfg.service
    query = create_model(
        "ForecastQuery",
        __config__=ConfigDict(extra="forbid"),
        pair=(str, Field(min_length=1, max_length=40, examples=[cfg.pairs[0]])),
        horizon=(
            StrictInt | None,
            Field(
                None,
                ge=1,
                le=cfg.horizon,
                description=f"Candles ahead, 1 to {cfg.horizon}; omitted: {cfg.horizon}.",
            ),
        ),
        candles=(
            list[Candle] | None,
            Field(
                None,
                min_length=1,
                max_length=s.max_candles,
                description="Recent candles continuing the model's history; the forecast "
                "is then made from the last of them.",
            ),
        ),
    )
    records = (list[query], Field(min_length=1, max_length=s.max_records))
    forecast = create_model(
        "ForecastRequest", __config__=ConfigDict(extra="forbid"), records=records
    )
    invocations = create_model(
        "InvocationsRequest",
        __config__=ConfigDict(extra="forbid"),
        dataframe_records=records,
    )
    return forecast, invocations


def upstream_records(queries: list[BaseModel], max_horizon: int) -> list[dict[str, Any]]:
    """The model server's ``dataframe_records``: every record with an explicit ``horizon``
    (MLflow cannot cast a column that some records omit) and candles as a JSON string."""
    out = []
    for q in queries:
        record: dict[str, Any] = {"pair": q.pair, "horizon": q.horizon or max_horizon}
        if q.candles:
            record["candles"] = json.dumps(
                [c.model_dump(mode="json") for c in q.candles], separators=(",", ":")
            )
        out.append(record)
    return out


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True if ``body`` (JSON text) nests arrays/objects deeper than ``limit``; counts
    brackets outside strings without parsing (a parser would recurse on the attack)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False
