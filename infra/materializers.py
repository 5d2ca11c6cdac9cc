"""Materializers: content-hashed frames (so caching follows the data, not artifact ids),
fitted candidates stored with each model's own ``save`` (Darts torch models lose their
Lightning module under pickle), and a fit step's backtests as Parquet and JSON."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.materializers.pandas_materializer import PandasMaterializer

from cryptocast.contracts import pair_slug
from cryptocast.delivery.provenance import data_fingerprint
from cryptocast.modeling.backtest import Candidates, Evaluation
from cryptocast.modeling.forecasting import Forecaster


class HashedFrameMaterializer(PandasMaterializer):
    """Parquet frames whose content hash keys the cache of the steps that read them."""

    def compute_content_hash(self, data: pd.DataFrame) -> str | None:
        return data_fingerprint(data)


class CandidatesMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Candidates,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: Candidates) -> None:
        index = {}
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            for pair, models in data.items():
                for name, fc in models.items():
                    fname = f"{pair_slug(pair)}__{name}.zip"
                    fc.save(os.path.join(tmp, fname))
                    fileio.copy(
                        os.path.join(tmp, fname), os.path.join(self.uri, fname), overwrite=True
                    )
                    index.setdefault(pair, {})[name] = fname
        with fileio.open(os.path.join(self.uri, "index.json"), "w") as fh:
            fh.write(json.dumps(index))

    def load(self, data_type: type[Any]) -> Candidates:
        with fileio.open(os.path.join(self.uri, "index.json"), "r") as fh:
            index = json.loads(fh.read())
        out = Candidates()
        with self.get_temporary_directory(delete_at_exit=True) as tmp:
            for pair, models in index.items():
                out[pair] = {}
                for name, fname in models.items():
                    local = os.path.join(tmp, fname)
                    fileio.copy(os.path.join(self.uri, fname), local, overwrite=True)
                    out[pair][name] = Forecaster.load(local)
        return out


class EvaluationMaterializer(BaseMaterializer):
    """A fit step's backtests: its three frames as Parquet, the calibrations as JSON."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Evaluation,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA
    FRAMES = ("scores", "backtests", "losses")

    def save(self, data: Evaluation) -> None:
        for name in self.FRAMES:
            with fileio.open(os.path.join(self.uri, f"{name}.parquet"), "wb") as fh:
                getattr(data, name).to_parquet(fh, index=False)
        with fileio.open(os.path.join(self.uri, "served.json"), "w") as fh:
            fh.write(json.dumps(data.served))

    def load(self, data_type: type[Any]) -> Evaluation:
        frames = {}
        for name in self.FRAMES:
            with fileio.open(os.path.join(self.uri, f"{name}.parquet"), "rb") as fh:
                frames[name] = pd.read_parquet(fh)
        with fileio.open(os.path.join(self.uri, "served.json"), "r") as fh:
            served = json.loads(fh.read())
        return Evaluation(served=served, **frames)
