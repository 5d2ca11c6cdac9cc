"""The front door as a background process of this checkout, and how a release follows it.

* :func:`launch` / :func:`ensure_running` / :func:`stop` / :func:`status`: the process,
  found through a small state file beside ``models/<gran>_models`` (pid, port, and a token
  it echoes, so that another checkout's front door on the same port is never taken for
  ours), its log beside it (``models/.<gran>_models.front.log``);
* :class:`FrontDoorProcess`: ``cryptocast.delivery.release.FrontDoor``: a release launches the front
  door before its model server starts and waits until it answers from the new server
  before it stops the old one.

Light on purpose (no ZenML, no MLflow): `cryptocast predict` and `status` use it. The
process itself runs ``infra.frontdoor_server.run`` (``cryptocast front-run``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptocast.config import Settings
from cryptocast.locks import pid_alive
from cryptocast.net import port_open
from cryptocast.paths import REPO_ROOT
from infra import server_environ

TOKEN_ENV = "CRYPTOCAST_FRONT_TOKEN"


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
    if state is None or not pid_alive(state["pid"]):
        return None
    health = _get(f"{state['url']}/health")
    if not health or health.get("instance") != state["token"]:
        return None
    return state


# front doors this process started: state file -> (process, where its log lines begin)
_started: dict[str, tuple[subprocess.Popen, int]] = {}


def launch(cfg: Settings) -> None:
    """Start the front door of ``cfg`` in the background unless it runs (or this process
    started it already); do not wait for it. A release launches it before its model
    server starts, so the two start side by side."""
    proc = _started.get(str(state_file(cfg)), (None, 0))[0]
    if (proc is not None and proc.poll() is None) or status(cfg) is not None:
        return
    if port_open(cfg.service.port, cfg.service.host):
        raise RuntimeError(
            f"port {cfg.service.port} on {cfg.service.host} is in use by another program, "
            f"so the front door cannot listen on {url(cfg)}: stop that program, or set "
            f"service.port in configs/{cfg.granularity}.yaml (the model server itself runs)"
        )
    log = _beside(cfg, ".log")
    settings_file(cfg).write_text(cfg.model_dump_json())
    token = secrets.token_hex(8)
    with open(log, "ab") as out:
        start = out.tell()  # the log keeps earlier starts; an error shows this one's lines
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "front-run", "--settings", str(settings_file(cfg))],
            cwd=REPO_ROOT,
            env=server_environ({TOKEN_ENV: token}),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command that started it
        )
    state = {"pid": proc.pid, "url": url(cfg), "token": token, "log": str(log)}
    state_file(cfg).write_text(json.dumps(state))
    _started[str(state_file(cfg))] = (proc, start)


def ensure_running(cfg: Settings, timeout_s: float = 60.0) -> dict[str, Any]:
    """Start the front door of ``cfg`` in the background unless it runs; wait until it
    answers ``/health``. Returns its state (pid, url, token, log)."""
    if (state := status(cfg)) is not None:
        return state
    launch(cfg)
    proc, start = _started[str(state_file(cfg))]
    log = _beside(cfg, ".log")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(_start_failure(cfg, proc.returncode, log, start))
        if (state := status(cfg)) is not None:
            return state
        time.sleep(0.05)
    raise RuntimeError(f"the front door did not answer on {url(cfg)} within {timeout_s:.0f}s")


def _start_failure(cfg: Settings, returncode: int, log: Path, start: int) -> str:
    """Why the front door that wrote ``log`` from byte ``start`` on exited at start."""
    with open(log, "rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    return (
        f"the front door on {url(cfg)} exited at start (exit {returncode}); "
        f"the last lines of {log}:\n  " + "\n  ".join(lines[-5:])
    )


def stop(cfg: Settings) -> int | None:
    """Stop this checkout's front door (its whole process group); its pid, or None."""
    state = _state(cfg)
    if state is None:
        return None
    pid = state["pid"]
    stopped = None
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped = pid
    state_file(cfg).unlink(missing_ok=True)
    return stopped


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
