"""validate: the OHLCV contract; stops the pipeline listing every violation."""

from __future__ import annotations

from typing import Annotated

import mlflow
import pandas as pd
from zenml import step

from cryptocast.config import ValidateSection
from cryptocast.contracts import SourceInfo
from cryptocast.data.validation import DataValidationError, ValidationReport
from cryptocast.data.validation import validate as check
from infra.materializers import HashedFrameMaterializer
from infra.stack import TRACKER
from infra.tracking import run_metadata


@step(experiment_tracker=TRACKER, output_materializers={"clean": HashedFrameMaterializer})
def validate(
    ohlcv: pd.DataFrame, source: SourceInfo, cfg: ValidateSection
) -> tuple[Annotated[pd.DataFrame, "clean"], Annotated[ValidationReport, "validation_report"]]:
    """The candles repaired by the documented rules, and the report of every repair; on
    a violation, the whole report is logged and the run stops (nothing downstream runs)."""
    try:
        clean, report = check(
            ohlcv, cfg.validation, freq=cfg.freq, pairs=cfg.pairs, live=source.live
        )
    except DataValidationError as exc:
        mlflow.log_dict(exc.report.to_dict(), "validation/report.json")
        mlflow.set_tag("validation", "failed")
        run_metadata({"validation": exc.report.to_dict()})
        raise
    print(report.format())
    return clean, report
