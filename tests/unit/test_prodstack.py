"""The production stack's processes through infra.supervisor, without its servers: a
service's pid record and log, its start failing with the log's tail (secrets masked),
`down` stopping what runs (a legacy bare-pid record too) and `status` seeing it."""

from __future__ import annotations

import sys

import pytest

from infra import prodstack, supervisor
from infra.prodstack.common import Context, process, start
from infra.remotestack import STACK_DIR_ENV, Layout, Ports, StackError


def test_down_stops_what_runs_and_status_sees_it(tmp_path):
    env = {STACK_DIR_ENV: str(tmp_path / "stack")}
    layout, _ = prodstack.stack_from_env(env)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    mlflow = process(layout, "mlflow", sleeper)
    pid = mlflow.start()
    assert mlflow.record == layout.run / "mlflow.pid"
    assert mlflow.log == layout.logs / "mlflow.log"
    zenml = supervisor.Process("zenml", sleeper, layout.logs / "z.log", layout.run / "x.pid")
    legacy = zenml.start()
    (layout.run / "zenml.pid").write_text(f"{legacy}\n")  # the bare pid of older records
    assert prodstack.pid(layout, "mlflow") == pid
    states = prodstack.status(env)
    assert states["mlflow"] == states["zenml"] == "running, not healthy"  # no credentials
    assert states["mariadb"] == "stopped"
    assert prodstack.down(lambda _: None, env) == ["zenml", "mlflow"]
    assert not supervisor.alive(pid)
    assert not supervisor.alive(legacy)
    assert set(prodstack.status(env).values()) == {"stopped"}
    assert prodstack.down(lambda _: None, env) == []


def test_a_service_that_dies_at_start_says_why_without_its_secrets(tmp_path):
    layout = Layout(tmp_path / "stack")
    creds = {"MLFLOW_ADMIN_PASSWORD": "s3cr3t-pw"}
    ctx = Context(layout, Ports(), creds, {}, lambda _: None)
    code = "import sys; print('bad password s3cr3t-pw', flush=True); sys.exit(1)"
    proc = process(layout, "mlflow", [sys.executable, "-c", code], creds=creds)
    with pytest.raises(StackError) as failed:
        start(ctx, "MLflow", proc, lambda: False)
    message = str(failed.value)
    assert message.startswith(f"MLflow exited while starting (log: {layout.logs / 'mlflow.log'})")
    assert "bad password" in message
    assert "s3cr3t-pw" not in message
