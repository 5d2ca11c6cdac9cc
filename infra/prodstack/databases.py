"""The stack's databases: MariaDB (the ZenML server's) and PostgreSQL (MLflow's)."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess

from infra import supervisor
from infra.prodstack.common import (
    START_TIMEOUT_S,
    Context,
    as_service_user,
    check_port_free,
    pg_bin,
    process,
    start,
)
from infra.remotestack import (
    MLFLOW_DB,
    POSTGRES_USER,
    ZENML_DB,
    ZENML_DB_USER,
    Layout,
    StackError,
    mask_secrets,
)

# ------------------------------------------------------------------ MariaDB


def mariadb_sql(ctx: Context, sql: str) -> str:
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


def mariadb_healthy(ctx: Context) -> bool:
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
    check_port_free(ctx.ports.mariadb, "mariadb")
    argv = [
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
    ]
    proc = process(ctx.layout, "mariadb", argv, creds=ctx.creds)
    start(ctx, "MariaDB", proc, sock.exists)
    proc.wait_ready(
        START_TIMEOUT_S,
        what="MariaDB",
        ready=lambda: mariadb_sql(ctx, "SELECT 1;").strip() == "1",
        poll_s=0.5,
        error=StackError,
    )
    pw = ctx.creds["ZENML_DB_PASSWORD"]
    mariadb_sql(
        ctx,
        f"CREATE DATABASE IF NOT EXISTS {ZENML_DB};\n"
        f"CREATE USER IF NOT EXISTS '{ZENML_DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}';\n"
        f"ALTER USER '{ZENML_DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}';\n"
        f"GRANT ALL PRIVILEGES ON {ZENML_DB}.* TO '{ZENML_DB_USER}'@'127.0.0.1';\n"
        "FLUSH PRIVILEGES;\n",
    )


# ------------------------------------------------------------------ PostgreSQL


def pg_env(ctx: Context) -> dict[str, str]:
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


def postgres_healthy(ctx: Context) -> bool:
    with _pg_connect(ctx, MLFLOW_DB) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _initdb(ctx: Context, data, as_user: list[str]) -> None:
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


def start_postgres(ctx: Context) -> None:
    """``pg_ctl`` starts (and daemonizes) the server: its pid goes to the pid record."""
    data = ctx.layout.data("postgres")
    as_user = as_service_user()
    if not (data / "PG_VERSION").exists():
        _initdb(ctx, data, as_user)
    check_port_free(ctx.ports.postgres, "postgres")
    sockdir = ctx.layout.data("postgres-socket")
    sockdir.mkdir(parents=True, exist_ok=True)
    spec = process(ctx.layout, "postgres", creds=ctx.creds)
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    spec.log.touch()
    if as_user:
        shutil.chown(sockdir, POSTGRES_USER, POSTGRES_USER)
        shutil.chown(spec.log, POSTGRES_USER, POSTGRES_USER)
    proc = subprocess.run(
        [
            *as_user,
            ctx.bins["pg_ctl"],
            "-D",
            str(data),
            "-l",
            str(spec.log),
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
        raise StackError(f"PostgreSQL did not start (log: {spec.log}): {spec.tail()}")
    supervisor.write_record(spec.record, int((data / "postmaster.pid").read_text().split()[0]))
    with _pg_connect(ctx, "postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (MLFLOW_DB,)).fetchone():
            return
        conn.execute(f"CREATE DATABASE {MLFLOW_DB}")


def stop_postgres(layout: Layout) -> bool:
    """``pg_ctl stop`` (fast), then the supervisor's stop for what is left."""
    spec = process(layout, "postgres")
    data = layout.data("postgres")
    if spec.pid is None or not (data / "PG_VERSION").exists():
        return False
    with contextlib.suppress(StackError, OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [*as_service_user(), pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
            timeout=60,
        )
    spec.stop()
    return True
