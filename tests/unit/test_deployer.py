"""Deleting a model server that another process deletes at the same time.

On a shared stack, one client's ``stop`` retires every server while another client's
front door retires the server it has just replaced; the slower of the two used to fail
with ZenML's "Failed to delete model server ... No such file or directory" (CI, the
remote stack's end-to-end test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from zenml.client import Client
from zenml.integrations.mlflow.services import MLFlowDeploymentConfig, MLFlowDeploymentService
from zenml.utils.networking_utils import find_available_port

from infra import deployer
from infra.stack import ensure_stack


@pytest.fixture
def record(tmp_path):
    """The record of a stopped server whose runtime directory is ``tmp_path/run``."""
    ensure_stack()
    runtime = tmp_path / "run"
    runtime.mkdir()
    config = MLFlowDeploymentConfig(
        model_name="race",
        model_uri="models:/race/1",
        registry_model_name="race",
        registry_model_version="1",
        service_name=f"race-{tmp_path.name}",
        root_runtime_path=str(tmp_path),
    )
    client = Client()
    response = client.create_service(
        config=config, service_type=MLFlowDeploymentService.SERVICE_TYPE
    )
    service = MLFlowDeploymentService(
        uuid=response.id, config=config, endpoint=deployer.endpoint(find_available_port())
    )
    service.status.runtime_path = str(runtime)
    client.update_service(
        id=response.id,
        service_source=service.model_dump().get("type"),
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        endpoint=service.endpoint.model_dump(),
    )
    (found,) = [s for s in deployer.servers("race") if s.uuid == response.id]
    return found


def _exists(uuid) -> bool:
    try:
        Client().get_service(uuid)
    except KeyError:
        return False
    return True


def test_a_server_whose_directory_another_process_removed_is_deleted(record):
    shutil.rmtree(record.status.runtime_path)  # the other process got there first
    deployer.delete(record)
    assert not _exists(record.uuid)


def test_a_server_another_process_deleted_is_gone(record):
    deployer.delete(record)
    assert not Path(record.status.runtime_path).exists()
    assert not _exists(record.uuid)
    deployer.delete(record)  # the slower process: nothing left to do, no error
