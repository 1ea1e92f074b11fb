"""Engine and sessions. Every SQLite vs PostgreSQL difference lives in this module."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, BigInteger, Engine, any_, bindparam, create_engine, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session, sessionmaker

# Attributes are JSONB on PostgreSQL (indexable, `||` merge) and JSON text on SQLite.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer (web + workers)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")  # ms; workers and web share one file
    cur.close()


_WITH = re.compile(r"\s*WITH\b", re.IGNORECASE)


class _Cursor(sqlite3.Cursor):
    """The driver opens a transaction by itself only before INSERT, UPDATE, DELETE and REPLACE, so a write
    starting with WITH (core/bulk.py's UPDATE .. FROM (VALUES ..)) committed on its own, whatever happened to
    the rest of its transaction: a delivery report's new status could be kept without its event or its CRM
    write-back. Here such a statement opens the transaction first, as on PostgreSQL. (A WITH .. SELECT, which
    nothing sends to SQLite, would open a read transaction, ended like any other by commit or rollback.)"""

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        self._begin(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> Any:
        self._begin(sql)
        return super().executemany(sql, seq_of_parameters)

    def _begin(self, sql: str) -> None:
        if not self.connection.in_transaction and _WITH.match(sql):
            super().execute("BEGIN")


class SqliteConnection(sqlite3.Connection):
    """A driver connection whose cursors are `_Cursor`s."""

    def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)


def make_engine(url: str) -> Engine:
    """Creates the engine for a SQLAlchemy URL, with the per-dialect settings we rely on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                  "factory": SqliteConnection})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def lock_row(session: Session, table: Any, row_id: Any) -> None:
    """Serialises the transactions that call this for the same row, until they end: PostgreSQL locks the row
    (SELECT .. FOR UPDATE); SQLite has one writer at a time, so this takes the database's write lock now
    (BEGIN IMMEDIATE), and what the transaction reads next is what the last writer committed."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(select(table.c.id).where(table.c.id == row_id).with_for_update())
    elif not conn.connection.driver_connection.in_transaction:  # already writing: the lock is held
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def in_values(session: Session, column: Any, values: Sequence[int]) -> Any:
    """`column IN (values)` with the values in one bound parameter, however many there are: PostgreSQL takes at
    most 65,535 parameters a statement (a campaign to a list of 100,000 contact ids failed at Processing), and
    each IN list item is a parameter. PostgreSQL gets `= ANY(<bigint array>)`, SQLite `IN (SELECT value FROM
    json_each(<JSON list>))`."""
    ids = [int(v) for v in values]
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("values", ids, type_=ARRAY(BigInteger), unique=True))
    each = func.json_each(bindparam("values", json.dumps(ids), unique=True)).table_valued("value")
    return column.in_(select(each.c.value))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def insert_for(engine_or_session: Any) -> Any:
    """The dialect's `insert` construct, which supports ON CONFLICT upserts on both databases."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def json_merge(bind_name: str, left: Any, right: Any) -> Any:
    """Expression merging two JSON objects, keys of `right` winning."""
    from sqlalchemy import func

    if bind_name == "postgresql":
        return left.op("||")(right)
    return func.json_patch(left, right)


def refresh_statistics(session: Session, table: str) -> None:
    """PostgreSQL: ANALYZE a table after a bulk write (a campaign's million new messages), so the planner uses
    the right index at once instead of after autovacuum's next round (seen: 22 ms vs 4 ms a report lookup).
    SQLite plans these queries well without statistics."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text(f"ANALYZE {table}"))
