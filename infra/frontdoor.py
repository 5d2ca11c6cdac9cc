"""The front door bound to the real parts, and its process.

* :class:`RegistryChampions`: the champion from the MLflow Model Registry, its servers from
  ZenML's MLflow model deployer (the router checks their identity before using one);
* :func:`run`: the front door in this process (``cryptocast front-run``);
* :func:`launch` / :func:`ensure_running` / :func:`stop` / :func:`status`: the front door
  as a background process, found through a small state file beside
  ``models/<gran>_models`` (pid, port, and a token it echoes, so that another checkout's
  front door on the same port is never taken for ours), its log beside it
  (``models/.<gran>_models.front.log``);
* :class:`FrontDoorProcess`: ``cryptocast.release.FrontDoor`` — a release waits until the
  front door answers from the new server before it stops the old one.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptocast import registry
from cryptocast.bundle import load_histories
from cryptocast.config import Settings
from cryptocast.frontdoor.router import Identity
from cryptocast.locks import pid_alive
from cryptocast.monitoring import live_from_metrics
from cryptocast.net import port_open
from cryptocast.paths import REPO_ROOT
from cryptocast.release import published_manifest
from infra import deployer, server_environ
from infra.tracking import MONITORING_PIPELINE, TRAINING_PIPELINE

TOKEN_ENV = "CRYPTOCAST_FRONT_TOKEN"
# registry tags of a version that say what it was trained on and how it became champion
TRAINED_TAGS = (
    "data_source",
    "data_fingerprint",
    "git_commit",
    "zenml_run_id",
    "challenger_mean_mase",
    "promoted_by",
    "promoted_at",
    "promotion_reason",
)


@dataclass
class RegistryChampions:
    """:class:`cryptocast.frontdoor.router.Champions` of one registered model.

    The router asks for the champion and its servers every ``check_interval_s``. The
    champion is one registry query; the servers are listed again only when the records
    changed (a server started, stopped or was deleted: one small query tells), when the
    champion changed, and at least every ``LIST_EVERY_S`` (a server that died with no
    record change; traffic notices a dead server at once anyway)."""

    cfg: Settings
    _known: dict[str, Identity] = field(default_factory=dict)  # versions never change
    # (records mark, version, when listed, URLs of that version's running servers)
    _listed: tuple[tuple[int, str], str, float, list[str]] | None = None
    LIST_EVERY_S = 10.0

    @property
    def name(self) -> str:
        return self.cfg.deploy.model_name

    def champion(self) -> Identity | None:
        version = registry.alias_version(self.name)
        if version is None:
            return None
        if version not in self._known:
            self._known[version] = Identity(
                model_name=self.name,
                version=version,
                run_id=registry.version_run_id(self.name, version),
                pairs=tuple(registry.version_pairs(self.name, version)),
            )
        return self._known[version]

    def servers(self, identity: Identity) -> list[str]:
        mark, now = deployer.records_mark(), time.monotonic()
        if self._listed is not None:
            old_mark, version, listed_at, urls = self._listed
            if (old_mark, version) == (mark, identity.version) and (
                now - listed_at < self.LIST_EVERY_S
            ):
                return urls
        urls = [
            s.prediction_url
            for s in deployer.servers(self.name)  # newest first
            if s.is_running
            and s.prediction_url
            and s.config.registry_model_version == identity.version
        ]
        self._listed = (mark, identity.version, now, urls)
        return urls

    def replace(self, identity: Identity) -> str:
        service = deployer.start(
            model_name=self.name,
            version=identity.version,
            pairs=list(identity.pairs),
            timeout_s=self.cfg.deploy.timeout_s,
            pipeline_name=TRAINING_PIPELINE,
            step_name="front-door-restart",
            reuse=False,
        )
        return service.prediction_url

    def retire_others(self, identity: Identity, keep_url: str) -> None:
        for svc in deployer.servers(self.name):
            if svc.prediction_url != keep_url:
                deployer.delete(svc)

    def trained(self, identity: Identity) -> dict[str, Any]:
        """What the registry says of how a version was trained and promoted."""
        tags = registry.client().get_model_version(self.name, identity.version).tags or {}
        return {k: tags[k] for k in TRAINED_TAGS if k in tags}

    def card(self, identity: Identity, recent: int = 168) -> dict[str, Any]:
        """The champion's model card: backtest metrics and recent closes from the
        published bundle (when it holds that version), live accuracy from the last
        monitoring run, and every version's promotion record."""
        from infra.exporter_state import last_run  # it imports this module

        out: dict[str, Any] = {"backtest": {}, "history": {}, "live": {}}
        models_dir = self.cfg.deploy.models_dir
        manifest = published_manifest(models_dir)
        if manifest is not None and manifest.model_version == identity.version:
            for pair, e in manifest.pairs.items():
                out["backtest"][pair] = {
                    "candidate": e.candidate,
                    "mase": e.metrics.get("mase"),
                    "naive_mase": e.naive_mase,
                    "coverage": e.metrics.get("coverage"),
                    "interval_score": e.metrics.get("interval_score"),
                }
            for pair, closes in load_histories(models_dir, manifest).items():
                tail = closes.tail(recent)
                out["history"][pair] = [
                    {"timestamp": t.isoformat(), "close": float(c)} for t, c in tail.items()
                ]
        monitor = last_run(self.cfg, MONITORING_PIPELINE)
        if monitor is not None:
            out["live"] = live_from_metrics(monitor.data.metrics, identity.pairs)
        table = registry.version_table(self.name)
        shown = ["version", "aliases", "promoted_by", "promoted_at", "promotion_reason",
                 "data_source", "challenger_mean_mase"]  # fmt: skip
        out["promotions"] = (
            table.reindex(columns=shown).fillna("").astype(str).to_dict("records")
            if not table.empty
            else []
        )
        return out


# -- the process -----------------------------------------------------------------------


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
    """``cryptocast.release.FrontDoor``: the front door follows a release."""

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


def run(cfg: Settings) -> None:
    """Serve the front door of ``cfg`` in this process until it is stopped."""
    from cryptocast import telemetry

    metrics = None
    if telemetry.multiprocess_metrics_dir() is not None:  # before prometheus_client loads
        metrics = telemetry.FrontDoorMetrics(cfg.granularity)
    import uvicorn

    from cryptocast.frontdoor.app import create_app
    from cryptocast.frontdoor.router import Router
    from cryptocast.frontdoor.transport import HttpTransport
    from infra.stack import configure_mlflow

    configure_mlflow()
    champions = RegistryChampions(cfg)
    s = cfg.service
    router = Router(
        champions,
        HttpTransport(),
        timeout_s=s.upstream_timeout_s,
        check_interval_s=s.check_interval_s,
        restart_wait_s=s.restart_wait_s,
        events=metrics,
    )
    app = create_app(
        cfg,
        router,
        record=metrics.request if metrics else None,
        trained=lambda up: champions.trained(up.identity),
        card=lambda up: champions.card(up.identity),
        instance=os.environ.get(TOKEN_ENV),
    )
    # ZenML, MLflow, SQLAlchemy and pandas leave ~0.5 M objects behind: a full collection
    # walking them paused requests for 50-600 ms. They live as long as the process, so
    # they are moved out of the collector's sight once, here, after start-up.
    gc.collect()
    gc.freeze()
    router.start()
    try:
        uvicorn.run(app, host=s.host, port=s.port, log_level="warning", access_log=False)
    finally:
        router.stop()
