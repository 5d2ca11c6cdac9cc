"""Model servers through ZenML's MLflow model deployer (local daemons on 127.0.0.1).

Blue/green: a new version gets a new server; only once it answers are the older servers
of the same model stopped. If the new one fails to start, the old one keeps serving.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from zenml.client import Client
from zenml.integrations.mlflow.model_deployers import MLFlowModelDeployer
from zenml.integrations.mlflow.services import MLFlowDeploymentConfig, MLFlowDeploymentService

from cryptocast import registry
from cryptocast.serving.client import ServingError, wait_until_serving


def deployer() -> MLFlowModelDeployer:
    return MLFlowModelDeployer.get_active_model_deployer()


def servers(model_name: str) -> list[MLFlowDeploymentService]:
    """Every MLflow server ZenML knows for the registered model ``model_name``.

    (``find_model_server(model_name=...)`` matches ZenML Model Control Plane models, not
    MLflow registry names, so the filter is applied here.)"""
    found = deployer().find_model_server(service_type=MLFlowDeploymentService.SERVICE_TYPE)
    return [s for s in found if s.config.model_name == model_name]


def service_name(model_name: str, version: str) -> str:
    """One service per (model, version): deploying v3 never reuses v2's server, and
    deploying a version that is already served returns that server."""
    return f"{model_name}-v{version}"


def running(model_name: str, version: str | None = None) -> MLFlowDeploymentService | None:
    """The server answering for ``model_name`` (for ``version`` if given, else the newest
    version that has one)."""
    live = [s for s in servers(model_name) if s.is_running]
    if version is not None:
        live = [s for s in live if s.config.registry_model_version == str(version)]
    live.sort(key=lambda s: int(s.config.registry_model_version or 0), reverse=True)
    return live[0] if live else None


def start(
    *,
    model_name: str,
    version: str,
    pairs: list[str],
    timeout_s: int,
    model_uri: str | None = None,
    pipeline_name: str = "",
    step_name: str = "",
    reuse: bool = True,
) -> MLFlowDeploymentService:
    """Start a server for ``model_uri`` (default: the registered version's source) and
    check that it answers for every pair as ``version``. A running server of the same
    version is reused unless ``reuse`` is false (a restart: the new server starts beside
    the old one, which the caller then retires)."""
    # MLflow launches `uvicorn` by name: make this interpreter's scripts reachable even
    # when the virtual environment is not activated (e.g. `.venv/bin/cryptocast`).
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    config = MLFlowDeploymentConfig(
        model_name=model_name,
        model_uri=model_uri or registry.version_source(model_name, version),
        registry_model_name=model_name,
        registry_model_version=str(version),
        pipeline_name=pipeline_name,
        pipeline_step_name=step_name,
        workers=1,
        timeout=timeout_s,
        description=f"cryptocast {model_name} v{version}",
        service_name=service_name(model_name, version) + ("" if reuse else f"-{int(time.time())}"),
    )
    # A server is reused only if it serves the very same model (URI), not just the same
    # version number: a deploy killed before its commit leaves a server for a version
    # number that the next deploy gets again, with another model.
    same_version = [
        s for s in servers(model_name) if s.config.registry_model_version == str(version)
    ]
    for stale in same_version:
        if not stale.is_running or stale.config.model_uri != config.model_uri:
            deployer().delete_model_server(stale.uuid, force=True)
    live = [s for s in same_version if s.is_running and s.config.model_uri == config.model_uri]
    service = live[0] if reuse and live else _create(config, timeout_s)
    if not service.is_running or not service.prediction_url:
        raise ServingError(f"server for {model_name} v{version} did not start: {service.status}")
    wait_until_serving(service.prediction_url, pairs, version, timeout_s=30)
    return service


def _create(config: MLFlowDeploymentConfig, timeout_s: int) -> MLFlowDeploymentService:
    """What ``BaseModelDeployer.deploy_model`` does, minus its lookup: in ZenML 0.98 that
    lookup matched v1's server for v2's configuration and returned it instead of starting
    v2. Servers are matched here by (model, version) instead."""
    client = Client()
    response = client.create_service(
        config=config, service_type=MLFlowDeploymentService.SERVICE_TYPE
    )
    try:
        service = deployer().perform_deploy_model(id=response.id, config=config, timeout=timeout_s)
    except Exception as exc:
        client.delete_service(response.id)
        raise ServingError(f"server for {config.model_uri} failed to start: {exc}") from exc
    client.update_service(
        id=service.uuid,
        name=service.config.service_name,
        service_source=service.model_dump().get("type"),
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        endpoint=service.endpoint.model_dump() if service.endpoint else None,
        prediction_url=service.get_prediction_url(),
        health_check_url=service.get_healthcheck_url(),
    )
    return service


def retire_others(model_name: str, keep: MLFlowDeploymentService | None) -> list[str]:
    """Stop and delete every server of ``model_name`` except ``keep``; return versions."""
    gone = []
    for svc in servers(model_name):
        if keep is not None and svc.uuid == keep.uuid:
            continue
        deployer().delete_model_server(svc.uuid, force=True)
        gone.append(str(svc.config.registry_model_version))
    return gone
