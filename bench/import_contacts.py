"""Contact import speed: a generated CSV through the real import job, against a bare parse-and-insert floor.

The import goes the way the API and CLI start it (`storage.save_upload` → `imports.create_import` → the job
`core.jobs.run_import`), run in this process as a worker would run it. It is not queued: on a shared Redis
a real worker could take it. The floor is one plain loop over the same file: phonenumbers parses each phone
to E.164, and the rows go into a plain table with one `COPY` (PostgreSQL) or `executemany` (SQLite).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/import_contacts.py` from root

import phonenumbers  # noqa: E402
import procs  # noqa: E402  (bench/procs.py: this script's directory is on sys.path)
from sqlalchemy import Engine, delete, func, select, text  # noqa: E402

from core import db, imports, jobs, migrations, redisdb, runtime, sample, storage, workspaces  # noqa: E402
from core.models import Contact, ContactImport, Workspace  # noqa: E402
from core.settings import Settings  # noqa: E402

FULL_ROWS = 1_000_000
QUICK_ROWS = 100_000
SEED = 7
# The file: phone, first_name, city, last_purchase. `--consent` adds the Marketing column as a
# consent, as `smsconnect demo` maps it (one more table written per contact).
MAPPING = {"phone": "Mobile", "first_name": "Name", "city": "City", "last_purchase": "LastPurchase"}
CONSENT = {"consent.marketing": "Marketing"}
FLOOR_TABLE = "bench_floor_contacts"
FLOOR_SQLITE_ROWS = 50_000  # rows per executemany call (bounds the floor's memory)


def bench_settings(data_dir: Path) -> Settings:
    """Settings from the environment (DATABASE_URL, REDIS_URL, ...), with the data dir in `data_dir`."""
    return Settings.from_env({**os.environ, "SMSCONNECT_DATA_DIR": str(data_dir)})


def run_floor(engine: Engine, path: Path, region: str, consent: bool) -> tuple[int, float]:
    """The floor: read the file, parse each phone with phonenumbers, bulk-insert; returns (rows, seconds)."""
    postgres = db.is_postgres(engine)
    columns = ["phone varchar(16)", "first_name text", "city text", "last_purchase text"]
    columns += ["marketing text"] if consent else []
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cur.execute(f"CREATE TABLE {FLOOR_TABLE} ({', '.join(columns)})")
        raw.commit()
        started = time.perf_counter()
        rows = _floor_rows(path, region, len(columns))
        if postgres:
            count = 0
            with cur.copy(f"COPY {FLOOR_TABLE} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            count = 0
            insert = f"INSERT INTO {FLOOR_TABLE} VALUES ({', '.join('?' * len(columns))})"
            while chunk := [row for _, row in zip(range(FLOOR_SQLITE_ROWS), rows, strict=False)]:
                cur.executemany(insert, chunk)
                count += len(chunk)
        raw.commit()
        seconds = time.perf_counter() - started
        cur.execute(f"DROP TABLE {FLOOR_TABLE}")
        raw.commit()
    finally:
        raw.close()
    return count, seconds


def _floor_rows(path: Path, region: str, width: int) -> Iterator[list[str]]:
    """The file's rows (Mobile, Name, City, LastPurchase, Marketing) cut to `width`, with the phone in E.164."""
    e164 = phonenumbers.PhoneNumberFormat.E164
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            try:
                number = phonenumbers.parse(row[0], region)
            except phonenumbers.NumberParseException:
                continue
            row[0] = phonenumbers.format_number(number, e164)
            yield row[:width]


def run_import(
    rt: runtime.Runtime, path: Path, mapping: dict[str, str]
) -> tuple[int, int, float, float, dict[str, float]]:
    """The real path into a fresh workspace; returns (workspace id, import id, seconds, peak RSS MB, CPU)."""
    settings = rt.settings
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, f"bench import {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                         settings.default_region, settings.timezone)
    sampler = procs.MemorySampler()
    sampler.start()
    cpu_before = cpu_seconds(rt.engine)
    started = time.perf_counter()
    with open(path, "rb") as handle:
        stored, size = storage.save_upload(settings.uploads_dir, ws.id, handle, path.name,
                                           settings.max_upload_bytes)
    with db.transaction(rt.sessions) as session:
        import_id = imports.create_import(session, ws.id, stored, path.name, size, mapping).id
    jobs.run_import(import_id)  # what `rq worker` runs for the queued job
    seconds = time.perf_counter() - started
    cpu_after = cpu_seconds(rt.engine)
    cpu = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1) for name in cpu_after}
    return ws.id, import_id, seconds, sampler.stop(), cpu


def cpu_seconds(engine: Engine) -> dict[str, float]:
    """CPU time so far of this process, of its ended children (the parsers) and, for a PostgreSQL on this
    host, of the server processes serving this database."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {"main": own.ru_utime + own.ru_stime, "parsers": children.ru_utime + children.ru_stime}
    if db.is_postgres(engine):
        with engine.connect() as conn:
            pids = conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
        ticks = [procs.cpu_ticks(pid) for pid in pids]
        if all(t is not None for t in ticks):  # a server on another host has no /proc entries here
            out["database"] = sum(t for t in ticks if t is not None) / os.sysconf("SC_CLK_TCK")
    return out


def check_import(rt: runtime.Runtime, workspace_id: int, import_id: int, expected: int) -> list[str]:
    """What is wrong with the finished import (empty when it holds the expected contacts)."""
    with rt.sessions() as session:
        record = session.get(ContactImport, import_id)
        stored = session.scalar(select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id))
    assert record is not None
    problems = []
    if record.status != "finished":
        problems.append(f"import {import_id} is {record.status}: {record.message}")
    if stored != expected:
        problems.append(f"the contacts table holds {stored} contacts of the workspace, expected {expected}")
    if (record.rows_total, record.rows_created, record.rows_failed) != (expected, expected, 0):
        problems.append(f"counts: {record.rows_total} read, {record.rows_created} created, "
                        f"{record.rows_updated} updated, {record.rows_failed} failed; expected {expected} created")
    return problems


def drop_workspace(rt: runtime.Runtime, workspace_id: int) -> None:
    """Removes the bench workspace again (contacts, consents and the import cascade with it).

    On PostgreSQL a VACUUM follows, so that the next run does not insert into indexes full of dead rows.
    """
    with db.transaction(rt.sessions) as session:
        session.execute(delete(Workspace).where(Workspace.id == workspace_id))
    if db.is_postgres(rt.engine):
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM"))


def run(rows: int, data_dir: Path, consent: bool) -> tuple[dict[str, Any], list[str]]:
    """Generates the file, times the floor and then the import; returns the figures and any problems."""
    settings = bench_settings(data_dir)
    migrations.upgrade(settings.sqlalchemy_url)
    rt = runtime.configure(settings)
    try:
        path = data_dir / "contacts.csv"
        sample.write_contacts_csv(path, rows, seed=SEED)
        database = rt.engine.dialect.name
        print(f"{rows:,} rows ({path.stat().st_size / 1e6:.0f} MB CSV) on {database}", file=sys.stderr)
        floor_rows, floor_s = run_floor(rt.engine, path, settings.default_region, consent)
        print(f"floor: {floor_rows:,} rows in {floor_s:.1f} s", file=sys.stderr)
        mapping = {**MAPPING, **(CONSENT if consent else {})}
        workspace_id, import_id, import_s, peak_mb, cpu = run_import(rt, path, mapping)
        print(f"import: {rows:,} rows in {import_s:.1f} s, peak RSS {peak_mb:.0f} MB; CPU seconds "
              + ", ".join(f"{name} {value}" for name, value in cpu.items()), file=sys.stderr)
        try:
            problems = check_import(rt, workspace_id, import_id, rows)
        finally:
            drop_workspace(rt, workspace_id)
        if floor_rows != rows:
            problems.append(f"the floor inserted {floor_rows} rows, expected {rows}")
    finally:
        runtime.reset()
        if not settings.redis_url:
            redisdb.stop_embedded(data_dir)
    figures = {
        "rows": rows,
        "rows_per_s": round(rows / import_s),
        "floor_rows_per_s": round(floor_rows / floor_s),
        "ratio": round(import_s / floor_s, 2),
        "peak_rss_mb": round(peak_mb),
        "seconds": round(import_s, 1),
        "floor_seconds": round(floor_s, 1),
        "database": database,
        "batch_rows": settings.import_batch_rows,
        "consent": consent,
        **{f"cpu_{name}_s": value for name, value in cpu.items()},
    }
    return figures, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the bench and prints the JSON result as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, not {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, help="number of rows (overrides --quick)")
    parser.add_argument("--consent", action="store_true", help="also import the Marketing column as a consent")
    args = parser.parse_args(argv)
    rows = args.rows if args.rows else QUICK_ROWS if args.quick else FULL_ROWS
    if rows < 1:
        parser.error("--rows must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        figures, problems = run(rows, Path(tmp), args.consent)
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    print(f"import {figures['rows_per_s']:,} rows/s, floor {figures['floor_rows_per_s']:,} rows/s, "
          f"ratio {figures['ratio']}x, peak RSS {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
