"""validate: the OHLCV contract; stops the pipeline listing every violation."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import Settings
from cryptocast.contracts import SourceInfo
from cryptocast.data.validation import DataValidationError
from cryptocast.data.validation import validate as check
from infra.materializers import HashedFrameMaterializer
from infra.stack import TRACKER
from infra.tracking import run_metadata


@step(experiment_tracker=TRACKER, output_materializers={"clean": HashedFrameMaterializer})
def validate(
    ohlcv: pd.DataFrame, source: dict, cfg: Settings
) -> tuple[Annotated[pd.DataFrame, "clean"], Annotated[dict, "validation_report"]]:
    live = SourceInfo.model_validate(source).live
    try:
        clean, report = check(ohlcv, cfg.validation, freq=cfg.freq, pairs=cfg.pairs, live=live)
    except DataValidationError as exc:
        mlflow.log_dict(exc.report.to_dict(), "validation/report.json")
        mlflow.set_tag("validation", "failed")
        run_metadata({"validation": exc.report.to_dict()})
        raise
    print(report.format())
    return clean, report.to_dict()
