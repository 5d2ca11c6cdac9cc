"""The production stack, started for real: ``cryptocast stack-up`` in a temporary
STACK_DIR on free ports (MariaDB, PostgreSQL, SeaweedFS S3, MLflow server, ZenML server),
a ZenML home connected to it with ``setup --stack remote``, then training, promotion,
monitoring and rollback through the CLI, checked where the data lives: the ZenML server's
REST API, MLflow's PostgreSQL tables, the S3 buckets. A second client (its own ZenML home
and working directory) sees the same champion and serves it; ``stack-down`` then
``stack-up`` keeps everything.

Skipped with the reason when mariadbd, PostgreSQL's initdb or weed is missing, or when a
server cannot start. One module-scoped stack; two training runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import fields
from pathlib import Path

import pytest

from tests.conftest import cli_env, free_port, run_cli, small_config

pytestmark = pytest.mark.e2e
NAME = "cryptocast-hour-remote"


def _stack_env() -> dict[str, str]:
    from infra.remotestack import Ports

    # PostgreSQL runs as `postgres` when the tests run as root: a directory it can reach
    root = Path(tempfile.mkdtemp(prefix="cryptocast-stack-"))
    root.chmod(0o755)
    env = {"STACK_DIR": str(root / "stack")}
    for f in fields(Ports):
        env[Ports.env_name(f.name)] = str(free_port())
    return env


def _client(stack_env: dict[str, str], base: Path, name: str) -> dict[str, str]:
    """A client: its own ZenML home and configs (models directory, front-door port)."""
    tmp = base / name
    tmp.mkdir()
    small_config(
        "hour", tmp, serve=True, deploy={"model_name": NAME, "timeout_s": 90}, source="sample"
    )
    small_config("day", tmp, serve=False, deploy={"model_name": f"{NAME}-day"}, source="sample")
    return cli_env(tmp) | stack_env | {"ZENML_CONFIG_PATH": str(tmp / "zenml-home")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from infra import prodstack
    from infra.remotestack import Layout, StackError, read_credentials

    try:
        prodstack.binaries()
    except StackError as exc:
        pytest.skip(str(exc))
    env = _stack_env()
    base = tmp_path_factory.mktemp("remote")
    up = run_cli(cli_env(base) | env, "stack-up", check=False)
    layout = Layout.from_env(env, Path.cwd())
    clients = []
    try:
        if up.returncode != 0:
            pytest.skip(f"the stack did not start: {up.stderr.strip()[-500:]}")
        creds = read_credentials(layout.credentials)
        clients += [_client(env, base, "a"), _client(env, base, "b")]
        run_cli(clients[0], "setup", "--stack", "remote")
        yield {
            "env": env,
            "a": clients[0],
            "b": clients[1],
            "creds": creds,
            "layout": layout,
            "up": up,
        }
    finally:
        for client in clients:  # servers, front doors (stopped already on success)
            run_cli(client, "stop", "--gran", "hour", check=False)
        _kill_model_servers(base)
        prodstack.down(lambda _: None, os.environ | env)
        shutil.rmtree(Path(env["STACK_DIR"]).parent, ignore_errors=True)


def _kill_model_servers(base: Path) -> None:
    """Stop the model servers the clients under ``base`` started that are still running
    after each client's `stop` (a failed test can leave a server whose record is gone)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "local_daemon_entrypoint" in cmd and str(base) in cmd:
            with contextlib.suppress(OSError):
                os.kill(int(cmdline.parent.name), signal.SIGTERM)


def _train(client, pairs: str) -> str:
    return run_cli(client, "train", "--gran", "hour", "--pairs", pairs).stdout


def _champion(client) -> str:
    """The champion as the client's `cryptocast status` reports it."""
    out = run_cli(client, "status").stdout
    line = next(line for line in out.splitlines() if NAME in line)
    return line.split("champion v")[1].split()[0]


def _pg(stack):
    import psycopg

    return psycopg.connect(
        host="127.0.0.1",
        port=int(stack["env"]["STACK_POSTGRES_PORT"]),
        user="postgres",
        password=stack["creds"]["POSTGRES_PASSWORD"],
        dbname="mlflow",
    )


def _alias(stack, alias: str = "champion") -> str:
    """The version behind ``alias``, read from MLflow's tables in PostgreSQL (quicker than
    a CLI process)."""
    with _pg(stack) as conn:
        row = conn.execute(
            "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = %s",
            (NAME, alias),
        ).fetchone()
    return str(row[0]) if row else ""


def _zenml_token(stack) -> str:
    url = f"http://127.0.0.1:{stack['env']['STACK_ZENML_PORT']}/api/v1/login"
    data = urllib.parse.urlencode({"password": stack["creds"]["ZENML_STORE_API_KEY"]}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def _zenml_get(stack, path: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{stack['env']['STACK_ZENML_PORT']}/api/v1{path}",
        headers={"Authorization": f"Bearer {_zenml_token(stack)}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_remote_stack_end_to_end(stack):
    a, env, creds = stack["a"], stack["env"], stack["creds"]
    assert "zenml: healthy" in stack["up"].stdout
    # the credentials: mode 0600, never printed
    assert stack["layout"].credentials.stat().st_mode & 0o777 == 0o600
    for secret in creds.values():
        assert secret not in stack["up"].stdout + stack["up"].stderr
    again = run_cli(a, "stack-up")
    assert "already up" in again.stdout
    assert "started" not in again.stdout

    # training through the remote stack: v1 (BTC), then v2 (adds ETH: promoted)
    assert "decision: PROMOTE" in _train(a, "BTC/USDT")
    assert "decision: PROMOTE" in _train(a, "BTC/USDT ETH/USDT")
    assert _alias(stack) == "2"
    monitor = run_cli(a, "monitor", "--gran", "hour", "--data", "sample")
    assert "monitor decision" in monitor.stdout
    versions = run_cli(a, "versions", "--gran", "hour").stdout
    assert "champion" in versions
    assert "previous" in versions

    # the runs, through the ZenML server's REST API
    runs = _zenml_get(stack, "/runs?sort_by=desc:created&size=20")["items"]
    training = [r for r in runs if r["name"].startswith("cryptocast_training")]
    assert len(training) >= 2
    assert {r["body"]["status"] for r in training} == {"completed"}

    # the MLflow runs and the registered versions, in PostgreSQL
    with _pg(stack) as conn:
        n_runs = conn.execute(
            "SELECT count(*) FROM runs r JOIN experiments e USING (experiment_id) "
            "WHERE e.name = 'cryptocast-hour' AND r.status = 'FINISHED'"
        ).fetchone()[0]
        sources = [
            row[0]
            for row in conn.execute(
                "SELECT source FROM model_versions WHERE name = %s ORDER BY version", (NAME,)
            )
        ]
    assert n_runs >= 2
    assert len(sources) == 2
    assert all(s.startswith("models:/m-") for s in sources)

    # the artefacts and the registered models' files, in the buckets
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{env['STACK_S3_PORT']}",
        aws_access_key_id=creds["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["S3_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )

    def keys(bucket: str) -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    assert any(k.startswith("artifacts/fit_") for k in keys("cryptocast-zenml"))  # fit steps
    mlflow_keys = keys("cryptocast-mlflow")
    for source in sources:
        model_id = source.removeprefix("models:/")
        assert any(k.endswith(f"/models/{model_id}/artifacts/MLmodel") for k in mlflow_keys)
    assert any(k.endswith("/decision.json") for k in mlflow_keys)

    # rollback: v1 again, served from its files behind the tracking server
    run_cli(a, "rollback", "--gran", "hour")
    assert (_alias(stack), _alias(stack, "previous")) == ("1", "2")

    # a second client, its own home and working directory, logged in to the same server
    b = stack["b"]
    run_cli(b, "setup", "--stack", "remote")
    assert _champion(b) == "1"
    served = json.loads(run_cli(b, "serve", "--gran", "hour", "--json").stdout)
    assert served["champion"] == "1"
    answer = run_cli(b, "predict", "--gran", "hour", "--pair", "BTC/USDT").stdout
    assert "BTC/USDT" in answer

    # stack-down leaves no process; stack-up again keeps everything
    from infra import prodstack, supervisor

    pids = [prodstack.pid(stack["layout"], name) for name in prodstack.SERVICES]
    run_cli(a, "stop", "--gran", "hour")
    run_cli(b, "stop", "--gran", "hour")
    down = run_cli(a, "stack-down")
    assert "stack stopped" in down.stdout
    time.sleep(1)
    assert not any(supervisor.alive(pid) for pid in pids if pid)
    assert "nothing to do" in run_cli(a, "stack-down").stdout
    run_cli(a, "stack-up")
    assert _alias(stack) == "1"
    assert _champion(b) == "1"
