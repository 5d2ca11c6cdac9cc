"""Shared helpers of `make bench` (:mod:`scripts.bench`): timed commands, a fresh ZenML
home per measurement and the cleanup of every process started in it, the model servers'
processes, latency summaries."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cryptocast.paths import REPO_ROOT as ROOT

PY = sys.executable


CLI = str(Path(PY).parent / "cryptocast")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


LAST_CORES = [0.0]  # CPU seconds / wall seconds of the last timed command


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t0, cpu0 = time.perf_counter(), _cpu_children()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    LAST_CORES[0] = round((_cpu_children() - cpu0) / wall, 2)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}")
    return wall, proc.stdout + proc.stderr


STEP_TIMES = """
import json
import infra  # sets ZenML's source root (loading an artefact needs it)
from infra.tracking import TRAINING_PIPELINE
from zenml.client import Client
run = Client().get_pipeline(TRAINING_PIPELINE).last_run
steps = {n: round((s.end_time - s.start_time).total_seconds(), 2) for n, s in run.steps.items()}
deployment = run.steps["deploy"].outputs["deployment"][0].load()
print("BENCH" + json.dumps({"status": [s.status.value for s in run.steps.values()], "steps": steps,
      "run": round((run.end_time - run.start_time).total_seconds(), 2),
      "deployment": deployment}))
"""


def train_timed(gran: str, env: dict, pairs: list[str] | None = None) -> dict:
    """``cryptocast train`` on sample data: wall time, cores used, the run's step times."""
    more = ["--pairs", " ".join(pairs)] if pairs else []
    wall, _ = timed([CLI, "train", "--gran", gran, "--data", "sample", *more], env)
    cores = LAST_CORES[0]
    _, out = timed([PY, "-c", STEP_TIMES], env)
    detail = json.loads(out.split("BENCH", 1)[1].splitlines()[0])
    return {"wall_s": round(wall, 2), "cores_used": cores, **detail}


def latency_summary(latencies_s: list[float], errors: int, **info) -> dict:
    import numpy as np

    lat = np.array(latencies_s) * 1000
    return {
        **info,
        "requests": len(lat),
        "errors": errors,
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2),
    }


def requests_json(url: str) -> dict:
    import requests

    return requests.get(url, timeout=10).json()


SERVER_PID = """
import sys
import infra
from infra import deployer
from cryptocast.runconfig import load_settings
from cryptocast.paths import granularity_config
from infra.stack import configure_mlflow
configure_mlflow()
name = load_settings(granularity_config(sys.argv[1])).deploy.model_name
print(next(s.status.pid for s in deployer.servers(name) if s.prediction_url == sys.argv[2]))
"""


def _with_descendants(pid: int) -> list[int]:
    """``pid`` and every process under it: a model server is ZenML's daemon and the
    uvicorn it started, which keeps answering if only the daemon is killed."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found = [pid]
    for p in found:
        found += [c for c, parent in parents.items() if parent == p]
    return found


def server_pids(env: dict, gran: str, url: str) -> list[int]:
    """The processes of the model server answering at ``url``: its daemon and its
    uvicorn (found through ZenML's records: a CLI-sized start, seconds)."""
    _, out = timed([PY, "-c", SERVER_PID, gran, url], env)
    return _with_descendants(int(out.strip().splitlines()[-1]))


def wait_replaced(front: str, victim: str, timeout_s: float = 120) -> None:
    """Until the front door at ``front`` answers from another server than ``victim``."""
    deadline = time.monotonic() + timeout_s
    while requests_json(f"{front}/version")["upstream"] == victim:
        if time.monotonic() > deadline:
            raise SystemExit("the killed model server was not replaced")
        time.sleep(0.2)


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def fresh_home(gran: str) -> tuple[Path, dict, dict]:
    """A new ZenML home with the run configuration of ``gran`` in it (models kept there
    too): the home, the environment that uses it, the run configuration."""
    home = Path(tempfile.mkdtemp(prefix="cryptocast-bench-"))
    env = os.environ | {
        "ZENML_CONFIG_PATH": str(home),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_AUTO_OPEN_DASHBOARD": "false",
        "CRYPTOCAST_CONFIG_DIR": str(home),  # the CLI reads <home>/<gran>.yaml
        "DATABASE_URL": f"sqlite:///{home}/forecasts.db",  # not the checkout's forecasts
    }
    for g in ("hour", "day"):  # both: `cryptocast status` reads both
        cfg = yaml.safe_load((ROOT / "configs" / f"{g}.yaml").read_text())
        cfg["parameters"]["config"]["deploy"]["models_dir"] = str(home / f"{g}_models")
        cfg["parameters"]["config"]["service"]["port"] = free_port()  # 8080 may be taken
        (home / f"{g}.yaml").write_text(yaml.safe_dump(cfg))
    return home, env, yaml.safe_load((home / f"{gran}.yaml").read_text())


def processes_of(home: Path) -> list[int]:
    """PIDs of the processes started for the ZenML home ``home`` (its path in their
    command line or environment: model server daemons, their uvicorn servers)."""
    mark = str(home).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "cmdline").read_bytes() or mark in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def cleanup(gran: str, env: dict, home: Path, grace_s: float = 10.0) -> list[int]:
    """Stop what the bench started in ``home`` (``cryptocast stop``, then SIGTERM and
    SIGKILL for anything left) and remove ``home``; returns the PIDs that had to be
    signalled (said loudly: ``stop`` should have stopped them)."""
    stop = subprocess.run(
        [CLI, "stop", "--gran", gran], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if stop.returncode != 0:
        print(f"bench: cryptocast stop failed ({stop.returncode}): {stop.stderr[-500:]}")
    left = processes_of(home)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_of(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while processes_of(home) and time.monotonic() < deadline:
            time.sleep(0.2)
    if left:
        print(f"bench: WARNING: {len(left)} process(es) outlived `cryptocast stop`: {left}")
    shutil.rmtree(home, ignore_errors=True)
    return left
