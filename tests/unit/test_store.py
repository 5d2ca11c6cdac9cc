"""The forecast store: upserts on the natural key, one transaction per write; SQLite always,
PostgreSQL when a server can be started here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError

from cryptocast.contracts import forecast_frame
from cryptocast.delivery import store


def frame(version="1", origin="2024-01-01T00:00Z", value=100.0, pair="BTC/USDT", steps=3):
    o = pd.Timestamp(origin)
    return forecast_frame(
        [
            {
                "pair": pair,
                "origin": o,
                "target_time": o + pd.Timedelta(hours=k + 1),
                "step": k + 1,
                "forecast": value + k,
                "lower": value - 5,
                "upper": value + 5,
                "model_version": version,
            }
            for k in range(steps)
        ]
    )


def check_store(url: str) -> None:
    engine = store.connect(url)
    try:
        assert (
            store.write_forecasts(engine, frame(), granularity="hour", model_name="m", run_id="r1")
            == 3
        )
        # the same forecasts again: updated in place, never duplicated
        store.write_forecasts(
            engine, frame(value=200.0), granularity="hour", model_name="m", run_id="r2"
        )
        rows = store.read_forecasts(engine, "hour")
        assert len(rows) == 3
        assert rows["forecast"].tolist() == [200.0, 201.0, 202.0]
        assert set(rows["run_id"]) == {"r2"}
        assert rows["target_time"].iloc[0] == pd.Timestamp("2024-01-01T01:00Z")
        # a later origin and another pair are new rows; latest = newest issue per pair
        time.sleep(0.01)
        store.write_forecasts(
            engine, frame(origin="2024-01-01T01:00Z"), granularity="hour", model_name="m"
        )
        store.write_forecasts(
            engine, frame(pair="ETH/USDT", value=10), granularity="hour", model_name="m"
        )
        store.write_forecasts(engine, frame(), granularity="day", model_name="m")
        store.write_forecasts(engine, frame(), granularity="hour", model_name="other")
        assert len(store.read_forecasts(engine, "hour", "m")) == 9
        assert len(store.read_forecasts(engine, "hour")) == 12
        latest = store.latest_forecasts(engine, "hour", "m")
        assert latest.groupby("pair").size().to_dict() == {"BTC/USDT": 3, "ETH/USDT": 3}
        btc = latest[latest["pair"] == "BTC/USDT"]
        assert str(pd.Timestamp(btc["origin"].iloc[0])).startswith("2024-01-01 01:00")
        # one transaction per write: a failing batch leaves nothing behind
        bad = frame(origin="2024-02-01T00:00Z")
        bad.loc[bad.index[-1], "forecast"] = float("nan")  # never stored: NOT NULL
        with pytest.raises(IntegrityError):
            store.write_forecasts(engine, bad, granularity="hour", model_name="m")
        assert len(store.read_forecasts(engine, "hour", "m")) == 9
    finally:
        engine.dispose()


def test_sqlite_store(tmp_path):
    check_store(f"sqlite:///{tmp_path / 'f.db'}")


def test_database_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert store.database_url() == f"sqlite:///{tmp_path / 'env.db'}"
    assert store.database_url("postgresql://x") == "postgresql://x"


def _pg_bin() -> Path | None:
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return roots[-1] if roots and (roots[-1] / "initdb").exists() else None


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package)."""
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed")
    base = Path(tempfile.mkdtemp(prefix="cryptocast-pg-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser; cannot start PostgreSQL")
        shutil.chown(base, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], capture_output=True, text=True)  # noqa: E731
    init = run(str(pg / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    if init.returncode != 0:
        pytest.skip(f"initdb failed: {init.stderr[-300:]}")
    start = run(
        str(pg / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(base / "log"),
        "-w",
        "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
        "start",
    )
    if start.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-300:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_postgres_store(postgres_url):
    check_store(postgres_url)


def test_a_database_from_before_quantiles_gains_the_column_and_keeps_its_rows(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the table as an older version created it
        db.execute(
            "CREATE TABLE forecasts (granularity VARCHAR(16), model_name VARCHAR(64), "
            "pair VARCHAR(32), model_version VARCHAR(16), origin DATETIME, "
            "target_time DATETIME, step INTEGER NOT NULL, forecast FLOAT NOT NULL, "
            "lower FLOAT, upper FLOAT, run_id VARCHAR(64), issued_at DATETIME NOT NULL, "
            "PRIMARY KEY (granularity, model_name, pair, model_version, origin, target_time))"
        )
        db.execute(
            "INSERT INTO forecasts VALUES ('hour', 'm', 'BTC/USDT', '1', "
            "'2024-01-01 00:00:00', '2024-01-01 01:00:00', 1, 100.0, 95.0, 105.0, 'r', "
            "'2024-01-01 00:00:00')"
        )
    engine = store.connect(f"sqlite:///{path}")
    assert store.migrate(engine) == []  # connect() already added it: idempotent
    old = store.read_forecasts(engine, "hour", "m")
    assert len(old) == 1
    assert old["quantiles"].isna().all()
    new = frame(version="2").assign(quantiles='{"0.1": 95.0, "0.9": 105.0}')
    store.write_forecasts(engine, new, granularity="hour", model_name="m")
    rows = store.read_forecasts(engine, "hour", "m").set_index("model_version")
    assert rows.loc["1", "quantiles"] is None or pd.isna(rows.loc["1", "quantiles"])
    assert (rows.loc["2", "quantiles"] == '{"0.1": 95.0, "0.9": 105.0}').all()
