"""Bulk statements straight to the database driver, for the hot paths that write hundreds of rows at once.

SQLAlchemy's executemany spends ~45 µs a row on parameter handling, and a VALUES construct of 500 rows takes
~130 µs a row to compile; at thousands of messages a second that is most of a worker's time. These helpers
write plain SQL with the driver's own placeholders and convert values with the columns' own bind processors
(memoised per value: a batch repeats one timestamp and a few statuses), so rows are stored exactly as the
ORM would store them. Like core/db.py, they hold the SQLite vs PostgreSQL differences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

_MARKER = re.compile(r"(?<!:):([a-z_]+)")  # `:name` in the SQL given to update_from_rows, not PostgreSQL's `::`


def _placeholder(dialect: Any) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


def _processor(dialect: Any, column: Any) -> Any:
    """The function SQLAlchemy converts the column's values with for the driver, or None."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _converters(dialect: Any, table: Table, names: Sequence[str]) -> list[tuple[int, Any, dict[Any, Any]]]:
    """(position, bind processor, memo) for the named columns that need converting on this dialect."""
    out = []
    for i, name in enumerate(names):
        proc = _processor(dialect, table.c[name])
        if proc is not None:
            out.append((i, proc, {}))
    return out


def _convert(rows: Sequence[Sequence[Any]], converters: list[tuple[int, Any, dict[Any, Any]]]) -> list[tuple[Any, ...]]:
    if not converters:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        item = list(row)
        for i, proc, seen in converters:
            value = item[i]
            if value is not None:
                try:
                    done = seen.get(value)
                except TypeError:  # unhashable (a JSON document): no memo
                    item[i] = proc(value)
                    continue
                item[i] = done if done is not None else seen.setdefault(value, proc(value))
        out.append(tuple(item))
    return out


def driver_rows(session: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Runs a SELECT (with `?` placeholders) on the driver's own cursor, in the session's transaction, and returns
    plain tuples, without SQLAlchemy's statement building and Row objects: a lane's 500-message lease, which holds
    SQLite's write lock, takes about half as long (in process, 6.3-7.3 → 2.4-4.3 ms with its commit). Values
    must already be in the driver's form (`driver_value`)."""
    conn = session.connection()
    if _placeholder(conn.dialect) != "?":
        sql = sql.replace("?", _placeholder(conn.dialect))
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def driver_value(session: Session, column: Any, value: Any) -> Any:
    """`value` as SQLAlchemy would hand it to the driver for `column` (on SQLite a datetime becomes its text)."""
    proc = _processor(session.get_bind().dialect, column)
    return proc(value) if proc is not None and value is not None else value


ROWS_PER_STATEMENT = 500  # rows of one UPDATE .. FROM: far below SQLite's parameter limit (PostgreSQL: arrays)


def update_from_rows(session: Session, table: Table, key: str, names: Sequence[str], rows: Sequence[Sequence[Any]],
                     assignments: str, where: str = "", params: Mapping[str, Any] | None = None) -> int:
    """`UPDATE table SET <assignments> FROM (rows) AS new WHERE table.<key> = new.<names[0]> [AND <where>]`,
    one statement per ROWS_PER_STATEMENT rows. Row values are in the order of `names` (columns of `table`;
    `names[0]` is matched against `key`). `assignments` and `where` are SQL that may use `new.<name>` and
    `:name` markers for `params` (each value converted as the column of that name). Returns the number of rows
    changed."""
    return sum(int(_update_from(session, table, key, names, rows[start : start + ROWS_PER_STATEMENT], assignments,
                                where, params, "").rowcount or 0)
               for start in range(0, len(rows), ROWS_PER_STATEMENT))


def update_from_rows_returning(session: Session, table: Table, key: str, names: Sequence[str],
                               rows: Sequence[Sequence[Any]], assignments: str, where: str = "",
                               params: Mapping[str, Any] | None = None, returning: str = "",
                               index: str = "") -> list[Any]:
    """update_from_rows, answering `RETURNING <returning>` (e.g. the ids of the rows it changed).

    `index` names the index of `key` when `key` is not the primary key. SQLite then gets `INDEXED BY <index>`:
    without statistics, its planner would rather build an automatic index over the whole table for each
    statement, given 500 VALUES rows to join and other equality terms in `where`. PostgreSQL plans it from
    its statistics."""
    return [row for start in range(0, len(rows), ROWS_PER_STATEMENT)
            for row in _update_from(session, table, key, names, rows[start : start + ROWS_PER_STATEMENT],
                                    assignments, where, params, returning, index).all()]


def _update_from(session: Session, table: Table, key: str, names: Sequence[str], rows: Sequence[Sequence[Any]],
                 assignments: str, where: str, params: Mapping[str, Any] | None, returning: str,
                 index: str = "") -> Any:
    conn = session.connection()
    dialect = conn.dialect
    mark = _placeholder(dialect)
    target = f"{table.name} INDEXED BY {index}" if index and dialect.name == "sqlite" else table.name
    converted = _convert(rows, _converters(dialect, table, names))
    if dialect.name == "postgresql":
        # One array a column, typed as the column: the statement's text is the same for any number of rows, so
        # psycopg and the server parse and plan it once. With a VALUES list of 2,000 parameters, psycopg split the
        # 30 KB text on every call (it caches only statements up to 4 KB) and the server planned it every time.
        arrays = ", ".join(f"CAST({mark} AS {table.c[name].type.compile(dialect)}[])" for name in names)
        source = f"SELECT * FROM unnest({arrays})"
        flat = [list(column) for column in zip(*converted, strict=True)]
    else:
        source = "VALUES " + ", ".join([f"({', '.join(mark for _ in names)})"] * len(rows))
        flat = [value for row in converted for value in row]
    tail = f"{assignments} FROM new WHERE {table.name}.{key} = new.{names[0]}" + (f" AND {where}" if where else "")
    used = [m.group(1) for m in _MARKER.finditer(tail)]  # the markers in order, one value each
    statement = f"WITH new ({', '.join(names)}) AS ({source}) UPDATE {target} SET " + _MARKER.sub(mark, tail)
    if returning:
        statement += f" RETURNING {returning}"
    if used:
        given = params or {}
        flat += _convert([[given[name] for name in used]], _converters(dialect, table, used))[0]
    return conn.exec_driver_sql(statement, tuple(flat))


def insert_rows(session: Session, table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]],
                skip_existing: str | None = None) -> None:
    """Inserts many rows; with `skip_existing` (a unique column), rows whose value is already stored are skipped
    (a re-run after a crash).

    SQLite: one executemany of INSERT [.. ON CONFLICT DO NOTHING] (in-process, no round trips). PostgreSQL: one
    COPY in text format, built as one string (executemany took 16 ms for 500 report events, a multi-row INSERT
    24 ms); to skip existing rows it COPYs into a temporary table and moves them over with INSERT .. SELECT ..
    ON CONFLICT DO NOTHING, since COPY itself cannot skip. Values must be text, numbers, Decimals, datetimes or
    None.
    """
    if not rows:
        return
    conn = session.connection()
    columns = ", ".join(names)
    if conn.dialect.name != "postgresql":
        marks = ", ".join(_placeholder(conn.dialect) for _ in names)
        skip = f" ON CONFLICT ({skip_existing}) DO NOTHING" if skip_existing else ""
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES ({marks}){skip}",
                             _convert(rows, _converters(conn.dialect, table, names)))
        return
    data = "".join(["\t".join([_copy_field(value) for value in row]) + "\n" for row in rows])
    target = f"new_{table.name}" if skip_existing else table.name
    with conn.connection.dbapi_connection.cursor() as cur:
        if skip_existing:
            cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {target} AS "
                        f"SELECT {columns} FROM {table.name} WITH NO DATA")
        with cur.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
            copy.write(data)
        if skip_existing:
            cur.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {target} "
                        f"ON CONFLICT ({skip_existing}) DO NOTHING")
            cur.execute(f"TRUNCATE {target}")


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
