"""MLflow "model from code": the pyfunc served by ZenML's MLflow model deployer.

Request (``POST /invocations``, MLflow scoring protocol)::

    {"dataframe_records": [{"pair": "BTC/USDT", "horizon": 24}, {"pair": "ETH/USDT"}]}

``horizon`` is optional (default and maximum: the configured horizon). Response: one record
per (pair, step) with ``pair, timestamp (ISO 8601 UTC), step, forecast, lower, upper,
model_version``. An unknown pair or a horizon above the maximum is answered with HTTP 400
and a message saying what is wrong.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel


def parse_requests(model_input: pd.DataFrame) -> list[tuple[str, int | None]]:
    """Validate request rows; raise ``ValueError`` naming the first bad one."""
    if "pair" not in model_input.columns:
        raise ValueError("each request needs a 'pair' field, e.g. {'pair': 'BTC/USDT'}")
    out = []
    for i, row in enumerate(model_input.to_dict("records")):
        pair = row.get("pair")
        if not isinstance(pair, str) or not pair:
            raise ValueError(f"request {i}: 'pair' must be a string like 'BTC/USDT'")
        horizon = row.get("horizon")
        if horizon is None or pd.isna(horizon):
            out.append((pair, None))
            continue
        if float(horizon) != int(horizon) or int(horizon) < 1:
            raise ValueError(f"request {i}: 'horizon' must be a positive integer, got {horizon}")
        out.append((pair, int(horizon)))
    return out


class CryptocastModel(PythonModel):
    """Forecasts for every pair of one granularity, from the bundle logged with it."""

    def load_context(self, context) -> None:
        from cryptocast.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])
        version = (context.model_config or {}).get("model_version")
        if version:
            self.bundle.manifest["model_version"] = str(version)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        try:
            frames = [self.bundle.forecast(p, h) for p, h in parse_requests(model_input)]
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise MlflowException(str(message), error_code=INVALID_PARAMETER_VALUE) from exc
        out = pd.concat(frames, ignore_index=True)
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return out


mlflow.models.set_model(CryptocastModel())
