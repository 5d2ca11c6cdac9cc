"""Deleting a model server that another process deletes at the same time.

On a shared stack, one client's ``stop`` retires every server while another client's
front door retires the server it has just replaced; the slower of the two used to fail
with ZenML's "Failed to delete model server ... No such file or directory" (CI, the
remote stack's end-to-end test)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from uuid import uuid4

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


class Starting:
    """A model server as :func:`deployer.wait_until_ready` sees it: its daemon's pid (None
    before the pid file is written, and once the daemon is gone) and its health, one
    value per check."""

    def __init__(self, pids: list[int | None], healthy_at: int | None, log: Path) -> None:
        self.pids, self.healthy_at, self.checks = pids, healthy_at, 0
        self.log = log

    @property
    def is_running(self) -> bool:
        self.checks += 1
        return self.healthy_at is not None and self.checks > self.healthy_at

    @property
    def status(self):
        pid = self.pids[min(self.checks, len(self.pids)) - 1] if self.checks else None
        return type("Status", (), {"pid": pid, "log_file": str(self.log)})


def test_a_server_that_dies_at_start_is_reported_at_once(tmp_path):
    log = tmp_path / "service.log"
    log.write_text("Starting MLflow prediction service\nModuleNotFoundError: No module named 'x'\n")
    server = Starting([None, 4242, 4242, None], healthy_at=None, log=log)
    with pytest.raises(deployer.ServingError) as exc:
        deployer.wait_until_ready(server, timeout_s=60, poll_s=0.001)
    assert server.checks == 4  # not the 60 s timeout: the fourth check saw it gone
    assert "exited while starting" in str(exc.value)
    assert "No module named 'x'" in str(exc.value)


def test_readiness_is_seen_at_the_first_healthy_check(tmp_path):
    server = Starting([None, 7, 7, 7], healthy_at=3, log=tmp_path / "none.log")
    deployer.wait_until_ready(server, timeout_s=60, poll_s=0.001)
    assert server.checks == 4


def test_a_daemon_gone_before_its_first_check_is_reported_after_a_grace(tmp_path, monkeypatch):
    monkeypatch.setattr(deployer, "DAEMON_GRACE_S", 0.05)
    server = Starting([None], healthy_at=None, log=tmp_path / "none.log")
    t0 = time.monotonic()
    with pytest.raises(deployer.ServingError, match="never started its daemon"):
        deployer.wait_until_ready(server, timeout_s=60, poll_s=0.001)
    assert time.monotonic() - t0 < 5  # the grace, not the 60 s timeout


def test_a_daemon_that_never_answers_times_out_saying_so(tmp_path):
    server = Starting([None, 9], healthy_at=None, log=tmp_path / "none.log")
    with pytest.raises(deployer.ServingError, match="answered no health check within 0s"):
        deployer.wait_until_ready(server, timeout_s=0.01, poll_s=0.001)


def test_servers_are_started_without_the_test_runs_coverage(monkeypatch, tmp_path):
    from infra import server_environ
    from infra.model_server import ModelServer

    monkeypatch.setenv("COVERAGE_PROCESS_CONFIG", "{}")
    assert "COVERAGE_PROCESS_CONFIG" not in server_environ({"A": "1"})
    assert server_environ({"A": "1"})["A"] == "1"
    config = MLFlowDeploymentConfig(
        model_name="m", model_uri="models:/m/1", root_runtime_path=str(tmp_path)
    )
    command, env = ModelServer(uuid=uuid4(), config=config)._get_daemon_cmd()
    module = command.index("-m") + 1
    assert command[module] == "infra.model_server_daemon"  # the lean one
    assert "zenml.services.local.local_daemon_entrypoint" in command  # ZenML's marker
    assert "COVERAGE_PROCESS_CONFIG" not in env
