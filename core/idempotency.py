"""Idempotency-Key for API writes, as payment APIs use it: the same key and body get the first answer again
(for 24 hours) and nothing is done twice; the same key with another body is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput
from core.models import ApiIdempotency
from core.models.base import as_utc, utcnow

KEEP_S = 24 * 3600  # an answer is kept (and a key is bound to its body) this long
MAX_KEY = 255  # characters


class KeyReused(InvalidInput):
    """The key was used before with a different body (HTTP 422)."""

    def __init__(self, key: str) -> None:
        super().__init__("Idempotency-Key", f"{key!r} was used with a different body in the last 24 hours", key)


def body_hash(body: Any) -> str:
    """sha256 of the body as canonical JSON (sorted keys), so key order and spacing do not matter."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def begin(session: Session, workspace_id: int, key: str, digest: str) -> Any | None:
    """Reserves the key for this body; returns the stored answer when the same body came before.

    The reservation row commits with the caller's work, so a concurrent request with the same key waits on it
    (PostgreSQL) and then replays the answer. Raises KeyReused for another body, Conflict while the first
    request is still running.
    """
    if not key or len(key) > MAX_KEY:
        raise InvalidInput("Idempotency-Key", f"must be 1..{MAX_KEY} characters", key)
    row = session.get(ApiIdempotency, (workspace_id, key))
    if row is not None and utcnow() - as_utc(row.created_at) > timedelta(seconds=KEEP_S):
        session.delete(row)
        session.flush()
        row = None
    if row is None:
        try:
            with session.begin_nested():
                session.add(ApiIdempotency(workspace_id=workspace_id, key=key, body_hash=digest, response=None))
            return None
        except IntegrityError:
            row = session.get(ApiIdempotency, (workspace_id, key), populate_existing=True)
            if row is None:
                raise Conflict("a request with this Idempotency-Key is still being processed") from None
    if row.body_hash != digest:
        raise KeyReused(key)
    if row.response is None:
        raise Conflict("a request with this Idempotency-Key is still being processed")
    return row.response


def finish(session: Session, workspace_id: int, key: str, response: Any) -> None:
    row = session.get(ApiIdempotency, (workspace_id, key))
    if row is not None:
        row.response = response
        session.flush()


def purge(session: Session) -> int:
    """Deletes answers older than KEEP_S; returns how many."""
    cutoff = utcnow() - timedelta(seconds=KEEP_S)
    result = session.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
