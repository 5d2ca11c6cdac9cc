"""The core release procedure (``cryptocast.delivery.release``) bound to the real parts: the MLflow
Model Registry and the MLflow servers of ZenML's model deployer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from zenml.integrations.mlflow.services import MLFlowDeploymentService

from cryptocast.config import Settings
from cryptocast.contracts import forecast_frame
from cryptocast.delivery import registry
from cryptocast.delivery.release import Release
from cryptocast.serving.client import forecast
from infra import deployer
from infra.frontdoor import FrontDoorProcess
from infra.tracking import TRAINING_PIPELINE


@dataclass
class MlflowRegistry:
    """:class:`cryptocast.delivery.release.Registry` of one registered model."""

    name: str

    def champion(self) -> str | None:
        return registry.alias_version(self.name)

    def previous(self) -> str | None:
        return registry.alias_version(self.name, registry.PREVIOUS)

    def require(self, version: str) -> None:
        registry.require_version(self.name, version)

    def set_champion(self, version: str) -> str | None:
        return registry.set_champion(self.name, version)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        registry.tag_version(self.name, version, tags)

    def version_pairs(self, version: str) -> list[str]:
        return registry.version_pairs(self.name, version)

    def download_bundle(self, version: str) -> Path:
        return registry.download_bundle(self.name, version)


@dataclass
class DeployerServers:
    """:class:`cryptocast.delivery.release.Servers`: MLflow servers of ZenML's model deployer."""

    model_name: str
    timeout_s: int

    def start(
        self, *, version: str, pairs: list[str], model_uri: str | None, event: str, restart: bool
    ) -> MLFlowDeploymentService:
        return deployer.start(
            model_name=self.model_name,
            version=version,
            pairs=pairs,
            timeout_s=self.timeout_s,
            model_uri=model_uri,
            pipeline_name=TRAINING_PIPELINE,
            step_name=event,
            reuse=not restart,
        )

    def running(self, version: str) -> MLFlowDeploymentService | None:
        return deployer.running(self.model_name, version)

    def retire_others(self, keep: MLFlowDeploymentService | None) -> list[str]:
        return deployer.retire_others(self.model_name, keep=keep)

    def forecasts(self, server: MLFlowDeploymentService, pairs: list[str]) -> list[pd.DataFrame]:
        rows = forecast(server.prediction_url, [{"pair": p} for p in pairs])
        frame = forecast_frame(rows)
        return [frame[frame["pair"] == p].reset_index(drop=True) for p in pairs]


def release_for(cfg: Settings) -> Release:
    """The release procedure of ``cfg``'s model on the active stack, its front door
    following each release."""
    return Release(
        cfg,
        MlflowRegistry(cfg.deploy.model_name),
        DeployerServers(cfg.deploy.model_name, cfg.deploy.timeout_s),
        FrontDoorProcess(cfg),
    )
