"""Forecasts in a database, through SQLAlchemy: SQLite by default, any URL in production.

One row per (granularity, model, pair, model_version, origin, target_time): the natural key, so
writing the same forecasts again updates them in place (upsert) instead of duplicating.
``origin`` is the open time of the last candle the forecast was made from; ``issued_at``
is when it was written. Every write is one transaction. A database written by an older
version gains the new columns when it is opened (:func:`migrate`); its rows are kept.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    inspect,
    select,
    text,
)

from cryptocast.paths import REPO_ROOT

DEFAULT_URL = f"sqlite:///{REPO_ROOT / 'data' / 'forecasts.db'}"
metadata = MetaData()
forecasts = Table(
    "forecasts",
    metadata,
    Column("granularity", String(16), primary_key=True),
    Column("model_name", String(64), primary_key=True),
    Column("pair", String(32), primary_key=True),
    Column("model_version", String(16), primary_key=True),
    Column("origin", DateTime, primary_key=True),  # naive UTC
    Column("target_time", DateTime, primary_key=True),  # naive UTC
    Column("step", Integer, nullable=False),
    Column("forecast", Float, nullable=False),
    Column("lower", Float),
    Column("upper", Float),
    Column("quantiles", Text),  # JSON {"0.05": price, ...}; NULL in rows written before it
    Column("run_id", String(64)),
    Column("issued_at", DateTime, nullable=False),
)
KEY = ("granularity", "model_name", "pair", "model_version", "origin", "target_time")


def database_url(url: str | None = None) -> str:
    """The database to use: ``url``, else ``$DATABASE_URL``, else the SQLite file under data/."""
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def connect(url: str | None = None) -> Engine:
    """Engine for ``url`` (default: ``$DATABASE_URL``, else SQLite under data/)."""
    url = database_url(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    metadata.create_all(engine)
    migrate(engine)
    return engine


def migrate(engine: Engine) -> list[str]:
    """Add the columns a table created by an older version lacks (existing rows keep
    NULL there); return what was added."""
    have = {c["name"] for c in inspect(engine).get_columns(forecasts.name)}
    added = []
    with engine.begin() as conn:
        for column in forecasts.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f"ALTER TABLE {forecasts.name} ADD COLUMN {column.name} {kind}"))
                added.append(column.name)
    return added


def _naive_utc(values: pd.Series) -> list[datetime]:
    ts = pd.to_datetime(values, utc=True).dt.tz_convert("UTC").dt.tz_localize(None)
    return [t.to_pydatetime() for t in ts]


def _upsert(engine: Engine):
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert


def write_forecasts(
    engine: Engine,
    frame: pd.DataFrame,
    *,
    granularity: str,
    model_name: str,
    run_id: str | None = None,
) -> int:
    """Upsert a forecast frame (the contract of ``cryptocast.contracts``); return rows."""
    if frame.empty:
        return 0
    rows = pd.DataFrame(
        {
            "granularity": granularity,
            "model_name": model_name,
            "pair": frame["pair"].astype(str),
            "model_version": frame["model_version"].astype(str),
            "origin": _naive_utc(frame["origin"]),
            "target_time": _naive_utc(frame["target_time"]),
            "step": frame["step"].astype(int),
            "forecast": frame["forecast"].astype(float),
            "lower": frame["lower"].astype(float),
            "upper": frame["upper"].astype(float),
            "quantiles": frame["quantiles"],
            "run_id": run_id,
            "issued_at": datetime.now(UTC).replace(tzinfo=None),
        }
    )
    # NaN is a float to PostgreSQL but NULL to SQLite: make it NULL everywhere, so the
    # NOT NULL constraint rejects a forecast that is not a number
    rows = rows.astype(object).where(rows.notna(), None).to_dict("records")
    insert = _upsert(engine)
    with engine.begin() as conn:  # one transaction
        if insert is None:  # other dialects: delete the keys, then insert
            for r in rows:
                conn.execute(forecasts.delete().where(*[forecasts.c[k] == r[k] for k in KEY]))
            conn.execute(forecasts.insert(), rows)
        else:
            stmt = insert(forecasts)
            update = {c: stmt.excluded[c] for c in rows[0] if c not in KEY}
            conn.execute(stmt.on_conflict_do_update(index_elements=list(KEY), set_=update), rows)
    return len(rows)


def _where(granularity: str, model_name: str | None):
    conds = [forecasts.c.granularity == granularity]
    if model_name is not None:
        conds.append(forecasts.c.model_name == model_name)
    return conds


def read_forecasts(engine: Engine, granularity: str, model_name: str | None = None) -> pd.DataFrame:
    """Every stored forecast of ``granularity`` (of ``model_name`` if given), times as UTC, sorted
    by pair, origin and target time."""
    with engine.connect() as conn:
        frame = pd.read_sql(select(forecasts).where(*_where(granularity, model_name)), conn)
    for col in ("origin", "target_time", "issued_at"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize("UTC")
    return frame.sort_values(["pair", "origin", "target_time"]).reset_index(drop=True)


def latest_forecasts(
    engine: Engine, granularity: str, model_name: str | None = None
) -> pd.DataFrame:
    """Per pair, the rows of its most recently issued forecast."""
    newest = (
        select(forecasts.c.pair, func.max(forecasts.c.issued_at).label("issued_at"))
        .where(*_where(granularity, model_name))
        .group_by(forecasts.c.pair)
        .subquery()
    )
    query = (
        select(forecasts)
        .join(
            newest,
            (forecasts.c.pair == newest.c.pair) & (forecasts.c.issued_at == newest.c.issued_at),
        )
        .where(*_where(granularity, model_name))
        .order_by(forecasts.c.pair, forecasts.c.target_time)
    )
    with engine.connect() as conn:
        return pd.read_sql(query, conn)
