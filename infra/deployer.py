"""Model servers through ZenML's MLflow model deployer (local daemons on 127.0.0.1).

Blue/green: a new version gets a new server; only once it answers are the older servers
of the same model stopped. If the new one fails to start, the old one keeps serving.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from uuid import UUID

from zenml.client import Client
from zenml.integrations.mlflow.model_deployers import MLFlowModelDeployer
from zenml.integrations.mlflow.services import MLFlowDeploymentConfig, MLFlowDeploymentService
from zenml.integrations.mlflow.services.mlflow_deployment import (
    MLFlowDeploymentEndpoint,
    MLFlowDeploymentEndpointConfig,
)
from zenml.services import (
    HTTPEndpointHealthMonitor,
    HTTPEndpointHealthMonitorConfig,
    ServiceEndpointProtocol,
)
from zenml.services.service import BaseDeploymentService
from zenml.utils.networking_utils import find_available_port

from cryptocast import failpoints
from cryptocast.delivery import registry
from cryptocast.serving.client import ServingError, wait_until_serving
from infra import supervisor
from infra.model_server import ModelServer

# how often a starting model server's health is checked
READY_POLL_S = 0.1
# a starting daemon that shows no pid this long after its launch is not running
DAEMON_GRACE_S = 5.0


def deployer() -> MLFlowModelDeployer:
    return MLFlowModelDeployer.get_active_model_deployer()


def servers(model_name: str) -> list[MLFlowDeploymentService]:
    """Every MLflow server ZenML knows for the registered model ``model_name``, newest
    first, with its status checked now.

    Not ``find_model_server``: that deletes every record whose server is still starting
    (no ``service_source`` yet), which a concurrent reader (the front door polls) turned
    into failed deployments. Its ``model_name`` filter also means ZenML Model Control
    Plane models, not MLflow registry names."""
    kind = MLFlowDeploymentService.SERVICE_TYPE
    responses = Client().list_services(
        sort_by="desc:created", type=kind.type, flavor=kind.flavor, size=1000, hydrate=True
    )
    found = []
    for response in responses.items:
        if not response.service_source or response.status is None:  # still being created
            continue
        service = BaseDeploymentService.from_model(response)
        runtime = getattr(service.status, "runtime_path", None)
        if runtime and not Path(runtime).exists():
            continue  # another client's server (a remote stack shares the records), not ours
        if service.config.model_name == model_name:
            service.update_status()
            found.append(service)
    return found


def records_mark() -> tuple[int, str]:
    """(how many, newest update) of the model-server records: one small query that
    changes whenever a server is created, updated or deleted (what a poller checks
    before the full :func:`servers`, which hydrates every record and pings every server)."""
    kind = MLFlowDeploymentService.SERVICE_TYPE
    page = Client().list_services(
        sort_by="desc:updated", type=kind.type, flavor=kind.flavor, size=1, hydrate=False
    )
    return page.total, str(page.items[0].updated) if page.items else ""


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
            delete(stale)
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
        service = _start_on_own_port(response.id, config, timeout_s)
    except Exception as exc:
        client.delete_service(response.id)
        raise ServingError(f"server for {config.model_uri} failed to start: {exc}") from exc
    client.update_service(
        id=service.uuid,
        name=service.config.service_name,
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        endpoint=service.endpoint.model_dump() if service.endpoint else None,
        prediction_url=service.get_prediction_url(),
        health_check_url=service.get_healthcheck_url(),
    )
    return service


def endpoint(port: int) -> MLFlowDeploymentEndpoint:
    """A server's endpoint on ``port``: MLflow's ``/invocations``, healthy when ``/ping``
    answers."""
    return MLFlowDeploymentEndpoint(
        config=MLFlowDeploymentEndpointConfig(
            protocol=ServiceEndpointProtocol.HTTP,
            port=port,
            allocate_port=True,  # if another process took it meanwhile: scan as ZenML does
            prediction_url_path="invocations",
        ),
        monitor=HTTPEndpointHealthMonitor(
            config=HTTPEndpointHealthMonitorConfig(
                healthcheck_uri_path="ping", use_head_request=False
            )
        ),
    )


def _start_on_own_port(
    uuid: UUID, config: MLFlowDeploymentConfig, timeout_s: int
) -> MLFlowDeploymentService:
    """``perform_deploy_model``, on a port the kernel handed out (random, unused) instead
    of ZenML's scan from 8000 upward, on which two deployments at once could both settle
    (the front door and the smoke test check a server's identity either way)."""
    config.root_runtime_path = deployer().local_path
    service = ModelServer(uuid=uuid, config=config, endpoint=endpoint(find_available_port()))
    # the record names its kind before the server starts: readers can load it meanwhile
    Client().update_service(id=uuid, service_source=service.model_dump().get("type"))
    service.start(timeout=0)  # spawn the daemon; readiness is ours to see (below)
    # ... and the record says where it runs at once: a run killed while it starts leaves
    # a server that `servers` lists (so that `retire_unregistered` and `stop` find it)
    Client().update_service(
        id=uuid,
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        endpoint=service.endpoint.model_dump() if service.endpoint else None,
    )
    failpoints.hit("deploy.server_starting")
    wait_until_ready(service, timeout_s)
    return service


def wait_until_ready(
    service: MLFlowDeploymentService, timeout_s: float, poll_s: float = READY_POLL_S
) -> None:
    """Return as soon as ``service`` answers its health check (polled every ``poll_s``);
    raise at once when its daemon is gone, with the end of its log.

    Not ZenML's ``poll_service_status``: it sleeps a whole second between checks, and a
    daemon that died at start reads INACTIVE, not failed, so it waits out the timeout.
    ZenML's daemon keeps its own pid file; the waiting is :func:`infra.supervisor.wait_until`."""
    started = time.monotonic()
    seen = False  # the daemon's pid was there once

    def running() -> bool:
        # the daemon writes its pid file within milliseconds of its start, and removes it
        # when it exits: no pid after that grace means it is gone already
        nonlocal seen
        if service.status.pid is not None:
            seen = True
            return True
        return not seen and time.monotonic() - started < min(DAEMON_GRACE_S, timeout_s)

    def died() -> str:
        state = "exited while starting" if seen else "never started its daemon"
        return f"the model server {state}{_log_tail(service)}"

    supervisor.wait_until(
        lambda: service.is_running,
        running,
        timeout_s=timeout_s,
        poll_s=poll_s,
        died=died,
        late=lambda t: (
            f"the model server answered no health check within {t:.0f}s{_log_tail(service)}"
        ),
        error=ServingError,
    )


def _log_tail(service: MLFlowDeploymentService, lines: int = 12) -> str:
    path = service.status.log_file
    tail = supervisor.log_tail(path, lines)
    if not tail:
        return ""
    return f"; its log ({path}) ends:\n" + "\n".join(f"  {line}" for line in tail)


def delete(service: MLFlowDeploymentService) -> None:
    """Stop ``service``'s server and delete its record. One that another process deleted
    meanwhile is gone, not an error: on a shared stack, one client's `stop` retires every
    server while another client's front door retires the server it replaced, and the
    slower of the two finds the runtime directory (or the record) gone."""
    try:
        deployer().delete_model_server(service.uuid, force=True)
    except RuntimeError as exc:
        # FileNotFoundError: the server is stopped and its directory gone, the record
        # left; IndexError: no record any more
        if not isinstance(exc.__cause__, FileNotFoundError | IndexError):
            raise
        with contextlib.suppress(KeyError):
            Client().delete_service(service.uuid)


def retire_unregistered(model_name: str, registered: set[str]) -> list[str]:
    """Stop and delete the servers of ``model_name`` whose version is not in the registry
    (``registered``): what a release killed before its commit left (a server of a version
    number the next release will give to another model). Call only while holding the
    granularity's lock (no release in progress). Returns their versions."""
    gone = []
    for svc in servers(model_name):
        if str(svc.config.registry_model_version) not in registered:
            delete(svc)
            gone.append(str(svc.config.registry_model_version))
    return gone


def retire_others(model_name: str, keep: MLFlowDeploymentService | None) -> list[str]:
    """Stop and delete every server of ``model_name`` except ``keep``; return versions."""
    gone = []
    for svc in servers(model_name):
        if keep is not None and svc.uuid == keep.uuid:
            continue
        delete(svc)
        gone.append(str(svc.config.registry_model_version))
    return gone
