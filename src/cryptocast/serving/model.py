"""MLflow "model from code": the pyfunc served by ZenML's MLflow model deployer.

Request (``POST /invocations``, MLflow scoring protocol)::

    {"dataframe_records": [{"pair": "BTC/USDT", "horizon": 24}, {"pair": "ETH/USDT"}]}

``horizon`` is optional (default and maximum: the configured horizon). ``candles`` is
optional: a JSON string holding a list of OHLCV records (``timestamp, open, high, low,
close, volume``) that continue the model's history; the forecast is then made from them.
Response: one record per (pair, step) with ``pair, origin, target_time`` (ISO 8601 UTC),
``step, forecast, lower, upper, model_version``, the model that made it (``model``: a
candidate, or ``baseline: random walk``), and who answered: ``model_name``,
``run_id`` (the MLflow run that logged the model). A bad request (unknown pair, horizon
too large, malformed candles) is answered with HTTP 400 and a message saying what is wrong.

Forecasts from the stored history are computed once, when the model loads: a request
without candles is a lookup.
"""

from __future__ import annotations

import json
import math
import os

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.pyfunc.scoring_server import _SERVER_MODEL_PATH

from cryptocast.contracts import TIME_COLUMNS, RequestError, served_model

Request = tuple[str, int | None, pd.DataFrame | None]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def parse_requests(
    model_input: pd.DataFrame, limits: dict[str, int] | None = None
) -> list[Request]:
    """Validate request rows; raise ``RequestError`` naming the first bad one. ``limits``:
    the front door's ``max_records`` per request and ``max_candles`` per record (from the
    bundle's manifest), so a server reached directly spends no minutes of CPU on a
    request the front door would refuse."""
    limits = limits or {}
    if "pair" not in model_input.columns:
        raise RequestError("each request needs a 'pair' field, e.g. {'pair': 'BTC/USDT'}")
    if (most := limits.get("max_records")) is not None and len(model_input) > most:
        raise RequestError(f"{len(model_input)} records in one request; at most {most}")
    out = []
    for i, row in enumerate(model_input.to_dict("records")):
        pair = row.get("pair")
        if not isinstance(pair, str) or not pair:
            raise RequestError(f"request {i}: 'pair' must be a string like 'BTC/USDT'")
        horizon = row.get("horizon")
        if not _missing(horizon):
            try:
                h = float(horizon)
            except (TypeError, ValueError):
                h = float("nan")
            if not math.isfinite(h) or not h.is_integer() or h < 1:
                raise RequestError(
                    f"request {i}: 'horizon' must be a positive integer, got {horizon!r}"
                )
            horizon = int(h)
        else:
            horizon = None
        candles = row.get("candles")
        if not _missing(candles):
            try:
                records = json.loads(candles) if isinstance(candles, str) else candles
                candles = pd.DataFrame.from_records(records)
            except (ValueError, TypeError) as exc:
                raise RequestError(
                    f"request {i}: 'candles' must be a JSON list of OHLCV records: {exc}"
                ) from exc
            if (most := limits.get("max_candles")) is not None and len(candles) > most:
                raise RequestError(f"request {i}: {len(candles)} candles; at most {most}")
        else:
            candles = None
        out.append((pair, horizon, candles))
    return out


class CryptocastModel(PythonModel):
    """Forecasts for every pair of one granularity, from the bundle logged with it."""

    def load_context(self, context) -> None:
        """Load the bundle (MLflow calls this once per server start) and compute every pair's
        forecast from its stored history then, so such a request is a lookup; metrics only inside
        a model server, not on MLflow's validation load."""
        from cryptocast import failpoints
        from cryptocast.observability import telemetry
        from cryptocast.serving.bundle import load_bundle

        in_server = bool(os.environ.get(_SERVER_MODEL_PATH))  # not a validation load
        if in_server:
            failpoints.hit("server.load_context")
        self.bundle = load_bundle(context.artifacts["bundle"])
        version = (context.model_config or {}).get("model_version")
        if version:
            self.bundle.manifest.model_version = str(version)
        self.cached = {pair: self.bundle.forecast(pair) for pair in self.bundle.pairs}
        m = self.bundle.manifest
        self.models = {p: served_model(e.candidate, e.kind) for p, e in m.pairs.items()}
        self.metrics = (
            telemetry.service_metrics(m.granularity, m.model_name, m.model_version)
            if in_server
            else None
        )

    def _one(self, pair: str, horizon: int | None, candles: pd.DataFrame | None):
        if candles is None:
            horizon = self.bundle.checked_horizon(pair, horizon)
            return self.cached[pair].head(horizon)
        return self.bundle.forecast(pair, horizon, candles)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """The forecast rows of every request in ``model_input`` (MLflow's ``/invocations``),
        counted and timed by the service metrics inside a model server."""
        if self.metrics is None:
            return self._predict(model_input)
        with self.metrics.request(bad_request=MlflowException):
            out = self._predict(model_input)
        self.metrics.predicted(list(out["pair"].unique()))
        return out

    def _predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
        try:
            requests = parse_requests(model_input, self.bundle.manifest.limits)
            frames = [self._one(*request) for request in requests]
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
        out = pd.concat(frames, ignore_index=True)
        for col in TIME_COLUMNS:
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        m = self.bundle.manifest
        return out.assign(
            model_name=m.model_name,
            run_id=m.mlflow_run_id or "",
            model=out["pair"].map(self.models),
        )


mlflow.models.set_model(CryptocastModel())
