"""The front door's HTTP contract, typed: what a client sends and gets back.

Request models are built from the configured limits (``ServiceSettings`` and the
horizon), so the OpenAPI document states them and FastAPI enforces them: strict integers,
at most ``max_records`` records and ``max_candles`` candles per record."""

from __future__ import annotations

import json
import math
import reprlib
from collections.abc import Sequence
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
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
    """Every refused or failed request, in one shape: a stable code for programs and a
    sentence for people (where the problem is and what was sent)."""

    error: str = Field(
        description="invalid_request (the contract: types, limits, unknown fields), "
        "malformed_json, not_json (Content-Type), too_large (body bytes), too_deep (JSON "
        "nesting), unknown_pair, refused (the model cannot answer), unavailable (no "
        "champion server yet), upstream_failed (the model server failed).",
        examples=["invalid_request"],
    )
    detail: str = Field(
        examples=["records[0].horizon: Input should be less than or equal to 24 (got 99)"]
    )


def describe_errors(errors: Sequence[dict[str, Any]]) -> str:
    """pydantic's validation errors (``{loc, msg, input}``) for a person, one clause each:
    ``records[0].horizon: <msg> (got 99)``; the input shown short (never a huge or
    non-JSON value: NaN and Infinity are shown as text)."""
    parts = []
    for e in errors:
        where = ""
        for key in [k for k in e.get("loc", ()) if k != "body"]:
            where += f"[{key}]" if isinstance(key, int) else f".{key}" if where else str(key)
        got = f" (got {reprlib.repr(e['input'])})" if "input" in e else ""
        parts.append(f"{where or 'request'}: {e['msg']}{got}")
    return "; ".join(parts)


class ForecastPoint(BaseModel):
    """One forecast candle of one pair: what made it, its origin and target time, the point forecast
    and its interval."""

    pair: str
    model: str = Field(
        "",
        description="What made this forecast: the learned candidate's name, or "
        "'baseline: random walk' (the calibrated naive forecast). Empty from versions "
        "registered before this field.",
        examples=["lightgbm", "baseline: random walk"],
    )
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
    """The answer of ``/forecast``: the served model and version, and every requested forecast
    point."""

    model_name: str
    model_version: str
    forecasts: list[ForecastPoint]


class ServedRow(ForecastPoint):
    """A row of MLflow's ``/invocations`` answer (the model server's own columns)."""

    model_version: str
    model_name: str
    run_id: str


class InvocationsResponse(BaseModel):
    """The answer of ``/invocations`` in MLflow's shape: the model server's rows."""

    predictions: list[ServedRow]


class Health(BaseModel):
    """The answer of ``/health`` and ``/ready``: a status word and which front door process
    answered."""

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
    label: str | None = Field(
        None, description="What the version serves in words, e.g. 'baseline: random walk'."
    )
    backtest: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per pair: candidate served, MASE, naive MASE."
    )
    live: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per pair: live MASE and coverage (last monitor run)."
    )
    monitoring: dict[str, Any] = Field(
        default_factory=dict,
        description="The last monitoring run: when, its status, decision and reasons (empty "
        "before the first).",
    )
    history: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Per pair: the recent closes the model knows."
    )
    promotions: list[dict[str, Any]] = Field(
        default_factory=list, description="Every version: aliases, how and why promoted."
    )


MLFLOW_INPUTS = ("dataframe_records", "dataframe_split", "instances", "inputs")


def _cell(value: Any) -> Any:
    """A pandas cell as MLflow's client sends it: a whole float (a column with gaps) is the
    integer it stands for; NaN is a missing value."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records from a frame's rows (split or columns): gaps left out, whole floats whole."""
    return [{k: _cell(v) for k, v in row.items() if _cell(v) is not None} for row in rows]


class _MLflowInput(BaseModel):
    """``/invocations`` takes every input format of MLflow's scoring server and reads it
    as ``dataframe_records``: ``dataframe_split`` (``{columns, data[, index]}``, what
    MLflow's own client sends for a DataFrame), ``instances`` and ``inputs`` (a list of
    records, or columns of values)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _as_records(cls, body: Any) -> Any:
        if not isinstance(body, dict):
            return body
        given = [k for k in MLFLOW_INPUTS if k in body]
        if len(given) != 1:
            raise ValueError(
                f"send exactly one of {', '.join(MLFLOW_INPUTS)} (got {given or 'none'})"
            )
        key = given[0]
        data, rest = body[key], {k: v for k, v in body.items() if k != key}
        if key == "dataframe_split" and isinstance(data, dict):
            columns, rows = data.get("columns"), data.get("data")
            if not isinstance(columns, list) or not isinstance(rows, list):
                raise ValueError("dataframe_split needs 'columns' and 'data' lists")
            n = len(columns)
            if any(not isinstance(r, list) or len(r) != n for r in rows):
                raise ValueError(f"dataframe_split: every row of 'data' needs {n} values")
            data = _records([dict(zip(columns, r, strict=True)) for r in rows])
        elif key in ("instances", "inputs") and isinstance(data, dict):
            columns = [v if isinstance(v, list) else [v] for v in data.values()]
            if len({len(c) for c in columns}) > 1:
                raise ValueError(f"{key}: every column needs as many values")
            data = _records([dict(zip(data, r, strict=True)) for r in zip(*columns, strict=True)])
        return {**rest, "dataframe_records": data}


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
        __base__=_MLflowInput,
        dataframe_records=records,
        params=(dict[str, Any] | None, Field(None, description="MLflow's params (unused).")),
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
