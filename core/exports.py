"""Streamed CSV export of contacts, escaped against spreadsheet formula injection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import segments
from core.models import Contact, GroupMember

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 5000
FIXED = ["phone", "status", "created_at", "updated_at"]


def escape_cell(value: Any) -> str:
    """Prefixes a quote to text that a spreadsheet would run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _rows(text: io.StringIO, writer: Any, row: list[Any]) -> str:
    writer.writerow([escape_cell(v) for v in row])
    out = text.getvalue()
    text.seek(0)
    text.truncate()
    return out


def export_csv(
    sessions: sessionmaker[Session], workspace_id: int, attributes: list[str],
    segment_filter: Any = None, group_id: int | None = None, include_deleted: bool = False,
) -> Iterator[str]:
    """Yields CSV text in chunks: a header, then contacts in id order, read 5,000 at a time (keyset)."""
    text = io.StringIO()
    writer = csv.writer(text)
    yield _rows(text, writer, FIXED + attributes)
    query = select(Contact).where(Contact.workspace_id == workspace_id).order_by(Contact.id)
    if not include_deleted:
        query = query.where(Contact.status != "deleted")
    if segment_filter is not None:
        query = query.where(segments.compile_filter(segment_filter, workspace_id))
    if group_id is not None:
        query = query.where(
            Contact.id.in_(select(GroupMember.contact_id).where(GroupMember.group_id == group_id))
        )
    last_id = 0
    while True:
        with sessions() as session:
            batch = session.scalars(query.where(Contact.id > last_id).limit(BATCH)).all()
        if not batch:
            return
        chunk = []
        for c in batch:
            row = [c.phone, c.status, c.created_at.isoformat(), c.updated_at.isoformat()]
            chunk.append(_rows(text, writer, row + [c.attributes.get(a) for a in attributes]))
        yield "".join(chunk)
        last_id = batch[-1].id
