"""Contact imports: a stored file + mapping, run as an RQ job, streamed in batches, merged by phone."""

from __future__ import annotations

import logging
import marshal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from queue import SimpleQueue
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core import contacts, importmap
from core.contacts import ContactRow
from core.errors import ImportFailed, InvalidInput, NotFound
from core.importfile import CsvSource, RawRow, XlsxSource, open_source
from core.importmap import RowError
from core.models import Contact, ContactImport, ImportRowError, Workspace
from core.models.base import utcnow

log = logging.getLogger(__name__)

MAX_STORED_ERRORS = 10000  # per import; all are counted, the first ones are kept with line and reason
CONVERTERS = 2  # processes converting rows of large files; the job's own process reads and writes meanwhile
IN_FLIGHT = 4  # chunks out at the converters at once (bounds memory to ~5 chunks of raw rows)
FORMATS = {"csv": "csv", "txt": "csv", "tsv": "csv", "xlsx": "xlsx"}


def file_format(filename: str) -> str:
    ext = Path(filename).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise InvalidInput("file", f"{filename!r}: expected a .csv or .xlsx file", filename)
    return FORMATS[ext]


def create_import(
    session: Session, workspace_id: int, path: Path, filename: str, size: int, mapping: dict[str, str] | None
) -> ContactImport:
    if mapping:
        importmap.check_mapping(mapping)
    record = ContactImport(
        workspace_id=workspace_id, filename=filename, stored_path=str(path), file_format=file_format(filename),
        mapping=mapping or {}, options={}, size_bytes=size,
    )
    session.add(record)
    session.flush()
    return record


def get_import(session: Session, workspace_id: int, import_id: int) -> ContactImport:
    record = session.get(ContactImport, import_id)
    if record is None or record.workspace_id != workspace_id:
        raise NotFound(f"import {import_id} not found")
    return record


def progress(record: ContactImport) -> float:
    if record.status == "finished":
        return 1.0
    return min(0.99, record.bytes_read / record.size_bytes) if record.size_bytes else 0.0


@dataclass
class _Totals:
    total: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    duplicate: int = 0
    stored_errors: int = 0


def run_import(sessions: sessionmaker[Session], import_id: int, batch_rows: int, parallel_min_rows: int) -> None:
    """Runs (or re-runs) an import to the end. Each batch commits with its progress, so a crash
    loses nothing; a re-run starts over and merges by phone, so it creates no duplicates."""
    with sessions() as session, session.begin():
        record = session.get(ContactImport, import_id)
        if record is None:
            raise NotFound(f"import {import_id} not found")
        region = session.get(Workspace, record.workspace_id).default_region  # type: ignore[union-attr]
        if record.status != "queued":  # a retry: forget what the earlier attempt marked
            session.execute(
                update(Contact)
                .where(Contact.workspace_id == record.workspace_id, Contact.last_import_id == import_id)
                .values(last_import_id=None)
            )
            session.query(ImportRowError).filter(ImportRowError.import_id == import_id).delete()
        record.status, record.started_at, record.message = "running", utcnow(), None
        for name in ("bytes_read", "rows_total", "rows_created", "rows_updated", "rows_failed", "rows_duplicate"):
            setattr(record, name, 0)
        workspace_id, path = record.workspace_id, Path(record.stored_path)
        fmt, mapping = record.file_format, record.mapping
    try:
        source = open_source(path, fmt)
    except ImportFailed as exc:
        return _finish(sessions, import_id, "failed", str(exc))
    try:
        cmap = importmap.resolve(mapping or importmap.default_mapping(source.header), source.header)
        with sessions() as session, session.begin():
            session.get(ContactImport, import_id).encoding = source.encoding  # type: ignore[union-attr]
        parallel = path.stat().st_size > parallel_min_rows * 40  # ~40 bytes a row
        batches = _converted(source.rows(), cmap, source.header, region, batch_rows, parallel)
        _write_all(sessions, import_id, workspace_id, batches, source)
    except (ImportFailed, InvalidInput) as exc:
        return _finish(sessions, import_id, "failed", str(exc))
    finally:
        source.close()
    _finish(sessions, import_id, "finished", None)


def _finish(sessions: sessionmaker[Session], import_id: int, status: str, message: str | None) -> None:
    with sessions() as session, session.begin():
        record = session.get(ContactImport, import_id)
        assert record is not None
        record.status, record.message, record.finished_at = status, message, utcnow()
        if status == "finished":
            record.bytes_read = record.size_bytes
    log.info("import %s %s%s", import_id, status, f": {message}" if message else "")


def _chunks(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _converted(
    rows: Iterator[RawRow], cmap: importmap.ColumnMap, header: list[str], region: str, size: int, parallel: bool
) -> Iterator[list[tuple[int, ContactRow | RowError]]]:
    """Converted chunks in file order. For large files CONVERTERS processes convert (phone parsing, cells
    to fields) while this one reads the file and writes; it only turns their tuples into rows."""
    chunks = _chunks(rows, size)
    if not parallel:
        yield from map(importmap.convert_chunk, ((chunk, cmap, header, region) for chunk in chunks))
        return
    setup = importmap.mapping_frame(cmap, header, region)
    converters = [_Converter(setup) for _ in range(CONVERTERS)]
    pending: deque[tuple[list[RawRow], _Converter]] = deque()
    try:
        for i, chunk in enumerate(chunks):
            converter = converters[i % CONVERTERS]
            converter.send(importmap.cells_of(chunk))
            pending.append((chunk, converter))
            if len(pending) >= IN_FLIGHT:
                chunk, converter = pending.popleft()
                yield importmap.finish_chunk(chunk, converter.receive())
        while pending:
            chunk, converter = pending.popleft()
            yield importmap.finish_chunk(chunk, converter.receive())
    finally:
        for converter in converters:
            converter.close()


class _Converter:
    """A process running `importmap.serve`: a fresh interpreter that loads only the conversion modules
    (~25 MB; a fork of a worker would carry the worker's heap). A thread feeds its input, so that a full
    pipe never blocks this process while the converter waits for its results to be read."""

    def __init__(self, setup: bytes) -> None:
        root = str(Path(importmap.__file__).resolve().parents[1])
        code = f"import sys; sys.path.insert(0, {root!r}); from core.importmap import serve; serve()"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.unread = 0  # chunks sent whose results were not read yet
        self._inbox: SimpleQueue[bytes | None] = SimpleQueue()
        self._inbox.put(setup)
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def send(self, rows: list[list[str] | None]) -> None:
        self.unread += 1
        self._inbox.put(importmap.frame(rows))

    def receive(self) -> list[importmap.Converted | importmap.Rejected | None]:
        assert self.process.stdout is not None
        self.unread -= 1
        data = importmap.read_frame(self.process.stdout)
        if data is None:
            raise RuntimeError(f"an import converter process ended with code {self.process.wait()}")
        return marshal.loads(data)  # type: ignore[no-any-return]

    def _feed(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while (data := self._inbox.get()) is not None:
                stdin.write(data)
                stdin.flush()
            stdin.close()
        except (BrokenPipeError, ValueError):  # the converter died or was killed; receive() reports it
            pass

    def close(self) -> None:
        """Ends the converter: at the end of its input, or at once when it still has work nobody will read."""
        self._inbox.put(None)
        if self.unread:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._feeder.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _write_all(
    sessions: sessionmaker[Session], import_id: int, workspace_id: int,
    batches: Iterator[list[tuple[int, ContactRow | RowError]]], source: CsvSource | XlsxSource,
) -> None:
    """Writes the batches in file order. A writer thread runs one batch's statements while this thread
    reads, converts and de-duplicates the next, so the database's work and ours overlap."""
    totals = _Totals()
    with closing(batches), ThreadPoolExecutor(1, thread_name_prefix=f"import-{import_id}") as writer:
        pending: Future[None] | None = None
        for results in batches:
            batch = _batch(results, source.bytes_read)
            if pending is not None:
                pending.result()  # one batch at a time: a failed write stops the import before the next
            pending = writer.submit(_write_batch, sessions, import_id, workspace_id, batch, totals)
        if pending is not None:
            pending.result()


@dataclass
class _Batch:
    """A chunk's rows merged by phone, and what it adds to the import's counts."""

    rows: list[ContactRow]
    lines: dict[str, int]  # line where each phone first appeared
    errors: list[dict[str, Any]]
    total: int
    failed: int
    duplicate: int
    bytes_read: int


def _batch(results: list[tuple[int, ContactRow | RowError]], bytes_read: int) -> _Batch:
    merged: dict[str, ContactRow] = {}
    lines: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    failed = duplicate = 0
    for line, item in results:
        if isinstance(item, RowError):
            failed += 1
            errors.append({"line": item.line, "column": item.column, "value": item.value, "reason": item.reason})
            continue
        earlier = merged.get(item.phone)
        if earlier is not None:
            duplicate += 1
            errors.append(_repeat_warning(line, item.phone, lines[item.phone]))
            item = _combine(earlier, item)
        else:
            lines[item.phone] = line
        merged[item.phone] = item
    return _Batch(list(merged.values()), lines, errors, len(results), failed, duplicate, bytes_read)


def _write_batch(
    sessions: sessionmaker[Session], import_id: int, workspace_id: int, batch: _Batch, totals: _Totals
) -> None:
    """Merges one batch and records its errors and the import's progress, in one transaction."""
    totals.total += batch.total
    totals.failed += batch.failed
    totals.duplicate += batch.duplicate
    errors = batch.errors
    with sessions() as session, session.begin():
        counts = contacts.merge_rows(session, workspace_id, batch.rows, "import", import_id)
        totals.created += counts.created
        totals.updated += counts.updated
        totals.duplicate += len(counts.repeated)
        errors += [_repeat_warning(batch.lines[p], p, None) for p in counts.repeated]
        room = MAX_STORED_ERRORS - totals.stored_errors
        if errors and room > 0:
            keep = [{"import_id": import_id, "severity": "error", **e} for e in errors[:room]]
            session.execute(ImportRowError.__table__.insert(), keep)
            totals.stored_errors += len(keep)
        session.execute(
            update(ContactImport).where(ContactImport.id == import_id).values(
                rows_total=totals.total, rows_created=totals.created, rows_updated=totals.updated,
                rows_failed=totals.failed, rows_duplicate=totals.duplicate, bytes_read=batch.bytes_read,
            )
        )


def _repeat_warning(line: int, phone: str, first_line: int | None) -> dict[str, Any]:
    where = f"line {first_line}" if first_line else "an earlier line"
    return {"line": line, "column": None, "value": phone, "severity": "warning",
            "reason": f"phone {phone} already appeared on {where}; merged into that contact"}


def _combine(first: ContactRow, second: ContactRow) -> ContactRow:
    """Two rows with one phone in a batch: later values win, nothing is dropped."""
    return ContactRow(
        phone=first.phone,
        attributes={**first.attributes, **second.attributes},
        consents={**first.consents, **second.consents},
        tags=tuple(sorted(set(first.tags) | set(second.tags))),
        external_ids={**first.external_ids, **second.external_ids},
    )


def row_errors(session: Session, import_id: int, limit: int, offset: int) -> list[ImportRowError]:
    return list(
        session.scalars(
            select(ImportRowError).where(ImportRowError.import_id == import_id)
            .order_by(ImportRowError.id).limit(limit).offset(offset)
        )
    )
