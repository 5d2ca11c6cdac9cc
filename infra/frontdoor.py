"""The front door as a background process of this checkout, and how a release follows it.

* :func:`launch` / :func:`ensure_running` / :func:`stop` / :func:`status`: the process,
  an :class:`infra.supervisor.Process` kept alive by its keeper (a killed front door
  answers again within seconds), found through its pid record beside
  ``models/<gran>_models`` (pid, url, and a token it echoes, so that another checkout's
  front door on the same port is never taken for ours), its log beside it
  (``models/.<gran>_models.front.log``);
* :class:`FrontDoorProcess`: ``cryptocast.delivery.release.FrontDoor``: a release launches the front
  door before its model server starts and waits until it answers from the new server
  before it stops the old one.

Light on purpose (no ZenML, no MLflow): `cryptocast predict` and `status` use it. The
process itself runs ``infra.frontdoor_server.run`` (``cryptocast front-run``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptocast.config import Settings
from cryptocast.errors import UserError
from cryptocast.net import port_open
from cryptocast.paths import REPO_ROOT
from infra import server_environ, supervisor

TOKEN_ENV = "CRYPTOCAST_FRONT_TOKEN"


class PortTaken(UserError, RuntimeError):
    """The front door's port is held by another program: the user frees it or moves it."""


def _beside(cfg: Settings, suffix: str) -> Path:
    """``models/.<gran>_models.front<suffix>``: the front door's files, beside the bundle."""
    d = cfg.deploy.models_dir
    return d.with_name(f".{d.name}.front{suffix}")


def state_file(cfg: Settings) -> Path:
    """Pid, url and token of the running front door."""
    return _beside(cfg, ".json")


def settings_file(cfg: Settings) -> Path:
    return _beside(cfg, ".settings.json")


def _state(cfg: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(state_file(cfg).read_text())
    except (OSError, ValueError):
        return None


def url(cfg: Settings) -> str:
    return f"http://{cfg.service.host}:{cfg.service.port}"


def _get(address: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def status(cfg: Settings) -> dict[str, Any] | None:
    """The state of this checkout's front door if it runs and answers as ours, else None."""
    state = _state(cfg)
    if state is None or not supervisor.alive(state["pid"]):
        return None
    health = _get(f"{state['url']}/health")
    if not health or health.get("instance") != state["token"]:
        return None
    return state


# front doors this process started: state file -> their supervised process
_started: dict[str, supervisor.Process] = {}


def _process(cfg: Settings, token: str) -> supervisor.Process:
    """The front door's process: kept alive (a killed front door is started again by its
    keeper), its pid record the state file."""
    log = _beside(cfg, ".log")
    return supervisor.Process(
        name="front door",
        argv=[sys.executable, "-m", "cli", "front-run", "--settings", str(settings_file(cfg))],
        env=server_environ({TOKEN_ENV: token}),
        cwd=REPO_ROOT,
        log=log,
        record=state_file(cfg),
        keep_alive=True,
        extra={"url": url(cfg), "token": token, "log": str(log)},
    )


def launch(cfg: Settings) -> None:
    """Start the front door of ``cfg`` in the background unless it runs (or is being
    started again by its keeper); do not wait for it. A release launches it before its
    model server starts, so the two start side by side."""
    record = supervisor.read_record(state_file(cfg))
    if record is not None:
        if supervisor.alive(record["pid"]):
            return
        # its keeper was killed: what it left of its group (the server) goes first
        supervisor.kill_group(record["pid"], timeout_s=10)
        state_file(cfg).unlink(missing_ok=True)
    if port_open(cfg.service.port, cfg.service.host):
        raise PortTaken(
            f"port {cfg.service.port} on {cfg.service.host} is in use by another program, "
            f"so the front door cannot listen on {url(cfg)}: stop that program, or set "
            f"service.port in configs/{cfg.granularity}.yaml (the model server itself runs)"
        )
    settings_file(cfg).write_text(cfg.model_dump_json())
    proc = _process(cfg, secrets.token_hex(8))
    proc.start()
    _started[str(state_file(cfg))] = proc


def ensure_running(cfg: Settings, timeout_s: float = 60.0) -> dict[str, Any]:
    """Start the front door of ``cfg`` in the background unless it runs; wait until it
    answers ``/health``. Returns its state (pid, url, token, log)."""
    if (state := status(cfg)) is not None:
        return state
    launch(cfg)
    pid = supervisor.read_record(state_file(cfg)) or {}
    proc = _started.get(str(state_file(cfg)))
    if proc is not None and (proc.started is None or proc.started.pid != pid.get("pid")):
        proc = None  # started here once, since stopped and started by another process
    start = proc.log_start if proc is not None else 0

    def running() -> bool:
        if proc is not None and proc.started is not None:
            return proc.started.poll() is None
        return bool(pid) and supervisor.alive(pid["pid"])

    def died() -> str:
        code = proc.started.poll() if proc is not None and proc.started is not None else None
        return _start_failure(cfg, code, _beside(cfg, ".log"), start)

    state: dict[str, Any] | None = None

    def answers() -> bool:
        nonlocal state
        state = status(cfg)
        return state is not None

    supervisor.wait_until(
        answers,
        running,
        timeout_s=timeout_s,
        poll_s=0.05,
        died=died,
        late=lambda t: f"the front door did not answer on {url(cfg)} within {t:.0f}s",
        error=RuntimeError,
    )
    assert state is not None  # wait_until returned: it answered
    return state


def revive(cfg: Settings) -> dict[str, Any] | None:
    """The front door's state, started again if it was started and not stopped (its pid
    record is there) but does not answer: its keeper is restarting it, or was killed too.
    None if it was not running or cannot start."""
    if (state := status(cfg)) is not None or not state_file(cfg).exists():
        return state
    try:
        return ensure_running(cfg)
    except RuntimeError:
        return None


def _start_failure(cfg: Settings, returncode: int | None, log: Path, start: int) -> str:
    """Why the front door that wrote ``log`` from byte ``start`` on exited at start."""
    return (
        f"the front door on {url(cfg)} exited at start (exit {returncode}); "
        f"the last lines of {log}:\n  " + "\n  ".join(supervisor.log_tail(log, 5, start))
    )


def stop(cfg: Settings) -> int | None:
    """Stop this checkout's front door (its whole process group, keeper and server); its
    pid, or None."""
    state = _state(cfg)
    if state is None:
        return None
    _started.pop(str(state_file(cfg)), None)
    proc = _process(cfg, state.get("token", ""))
    return proc.stop(timeout_s=10)


@dataclass
class FrontDoorProcess:
    """``cryptocast.delivery.release.FrontDoor``: the front door follows a release."""

    cfg: Settings

    def prepare(self) -> None:
        """Launch the front door if it does not run; a failure is said by ``follow``."""
        with contextlib.suppress(RuntimeError):
            launch(self.cfg)

    def follow(self, version: str, server_url: str | None) -> bool:
        """Start the front door if needed and wait until it answers as ``version`` from
        ``server_url``; False (with a warning) if it did not within ``switch_timeout_s``."""
        try:
            state = ensure_running(self.cfg)
        except RuntimeError as exc:
            print(f"front door: {exc}", file=sys.stderr)
            return False
        deadline = time.monotonic() + self.cfg.service.switch_timeout_s
        while time.monotonic() < deadline:
            info = _get(f"{state['url']}/version") or {}
            if info.get("model_version") == version and (
                server_url is None or info.get("upstream") == server_url
            ):
                return True
            time.sleep(0.1)
        print(
            f"front door: still not answering as v{version} after "
            f"{self.cfg.service.switch_timeout_s:.0f}s; the older servers keep running "
            f"(see {state['log']})",
            file=sys.stderr,
        )
        return False
