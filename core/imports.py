"""Contact imports: a stored file + mapping, run as an RQ job, streamed in batches, merged by phone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core import contacts, importmap, phones
from core.contacts import ContactRow
from core.errors import ImportFailed, InvalidInput, NotFound
from core.importfile import CsvSource, RawRow, XlsxSource, open_source
from core.importmap import RowError
from core.models import Contact, ContactImport, ImportRowError, Workspace
from core.models.base import utcnow

log = logging.getLogger(__name__)

MAX_STORED_ERRORS = 10000  # per import; all are counted, the first ones are kept with line and reason
PARSER_PROCESSES = 2  # phone parsers for large files; the job's own process reads and writes meanwhile
IN_FLIGHT = 4  # chunks out at the parser processes at once (bounds memory to ~5 chunks of raw rows)
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
    """Converted chunks in file order. Phone parsing is CPU-bound (~30 µs a number, most of an import's
    work), so large files have it done in helper processes while this one reads the file and writes."""
    chunks = _chunks(rows, size)
    texts = partial(importmap.phone_texts, cmap=cmap)
    if parallel:
        parsed = phones.normalize_chunks(chunks, texts, region, PARSER_PROCESSES, IN_FLIGHT)
    else:
        parsed = ((chunk, phones.normalize_many(texts(chunk), region)) for chunk in chunks)
    with closing(parsed):
        for chunk, numbers in parsed:
            yield importmap.convert_parsed(chunk, numbers, cmap, header)


def _write_all(
    sessions: sessionmaker[Session], import_id: int, workspace_id: int,
    batches: Iterator[list[tuple[int, ContactRow | RowError]]], source: CsvSource | XlsxSource,
) -> None:
    """Writes the batches in file order. A writer thread runs one batch's statements while this thread
    converts the next, so the database and the conversion (each ~a third of an import's time) overlap."""
    totals = _Totals()
    with closing(batches), ThreadPoolExecutor(1, thread_name_prefix=f"import-{import_id}") as writer:
        pending: Future[None] | None = None
        for results in batches:
            if pending is not None:
                pending.result()  # one batch at a time: a failed write stops the import before the next
            pending = writer.submit(
                _write_batch, sessions, import_id, workspace_id, results, totals, source.bytes_read
            )
        if pending is not None:
            pending.result()


def _write_batch(
    sessions: sessionmaker[Session], import_id: int, workspace_id: int,
    results: list[tuple[int, ContactRow | RowError]], totals: _Totals, bytes_read: int,
) -> None:
    merged: dict[str, ContactRow] = {}
    lines: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    totals.total += len(results)
    for line, item in results:
        if isinstance(item, RowError):
            totals.failed += 1
            errors.append({"line": item.line, "column": item.column, "value": item.value, "reason": item.reason})
            continue
        earlier = merged.get(item.phone)
        if earlier is not None:
            totals.duplicate += 1
            errors.append(_repeat_warning(line, item.phone, lines[item.phone]))
            item = _combine(earlier, item)
        else:
            lines[item.phone] = line
        merged[item.phone] = item
    with sessions() as session, session.begin():
        counts = contacts.merge_rows(session, workspace_id, list(merged.values()), "import", import_id)
        totals.created += counts.created
        totals.updated += counts.updated
        totals.duplicate += len(counts.repeated)
        errors += [_repeat_warning(lines[p], p, None) for p in counts.repeated]
        room = MAX_STORED_ERRORS - totals.stored_errors
        if errors and room > 0:
            keep = [{"import_id": import_id, "severity": "error", **e} for e in errors[:room]]
            session.execute(ImportRowError.__table__.insert(), keep)
            totals.stored_errors += len(keep)
        session.execute(
            update(ContactImport).where(ContactImport.id == import_id).values(
                rows_total=totals.total, rows_created=totals.created, rows_updated=totals.updated,
                rows_failed=totals.failed, rows_duplicate=totals.duplicate, bytes_read=bytes_read,
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
