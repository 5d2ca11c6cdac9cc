"""Killed training runs: no process left behind, no run left `running`.

``make train`` stopped by a signal to make (its Python run follows it and marks its runs
failed on the way out), and a training process killed outright (SIGKILL: nothing runs;
the next ``make status`` or ``make train``, holding the lock, marks the orphans failed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, ROOT, cli_env, run_cli, small_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("processes")
    small_config(
        "hour",
        tmp,
        serve=False,
        deploy={"model_name": "cryptocast-hour-kill"},
        cache=False,
        source="sample",
    )  # fmt: skip  (killed inside a fit step)
    small_config("day", tmp, serve=False, source="sample")  # make status shows both
    e = cli_env(tmp)
    run_cli(e, "setup")
    # the analytics opt-out is stored in the ZenML home: its own zenml CLI sends nothing
    home = os.environ["ZENML_CONFIG_PATH"]
    assert "analytics_opt_in: false" in Path(home, "config.yaml").read_text()
    return e


def _start(cmd: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(path, text: str, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared:\n{path.read_text()[-3000:]}")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _statuses() -> tuple[list[str], list[str]]:
    """(ZenML statuses, MLflow statuses) of the training runs, newest first."""
    import mlflow
    from zenml.client import Client

    from infra.stack import configure_mlflow, ensure_stack

    ensure_stack()  # this process's view of the active stack (earlier tests may have moved it)
    configure_mlflow()
    runs = Client().list_pipeline_runs(pipeline_name="cryptocast_training", sort_by="desc:created")
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("cryptocast-hour")
    mlflow_runs = client.search_runs(
        [experiment.experiment_id], "tags.pipeline = 'cryptocast_training'"
    )
    return [r.status.value for r in runs.items], [r.info.status for r in mlflow_runs]


def test_sigkill_leaves_orphans_that_status_marks_failed(env, tmp_path):
    log_path = tmp_path / "train.log"
    with log_path.open("w") as log:
        proc = _start([str(CLI), "train", "--gran", "hour"], env, log)
        _wait_for(log_path, ": fitting and backtesting")  # inside a fit step
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    zenml, mlflow_ = _statuses()
    assert zenml[0] == "running"  # nobody told ZenML ...
    assert "RUNNING" in mlflow_  # ... or MLflow
    out = run_cli(env, "status").stdout
    assert "killed run(s) marked failed: ZenML run cryptocast_training-" in out
    assert "MLflow run cryptocast_training-" in out
    zenml, mlflow_ = _statuses()
    assert zenml[0] == "failed"
    assert "RUNNING" not in mlflow_
    assert "training: no run in progress" in run_cli(env, "status").stdout


def test_killing_make_stops_its_training_run(env, tmp_path):
    log_path = tmp_path / "make.log"
    with log_path.open("w") as log:
        proc = _start(["make", "-s", "train", "GRAN=hour"], env, log)
        _wait_for(log_path, ": fitting and backtesting")  # inside a fit step
        children = _children(proc.pid)
        assert children, "make runs the training in a child process"
        os.kill(proc.pid, signal.SIGTERM)  # make only, as `kill <pid of make>` does
        proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(map(_alive, children))
    text = log_path.read_text()
    assert "STOPPED by SIGTERM" in text
    assert "Traceback" not in text
    zenml, mlflow_ = _statuses()
    assert zenml[0] == "failed"
    assert "RUNNING" not in mlflow_
