"""The write-back outbox: message and contact events queued per plugin connection, written to the CRM by
RQ jobs in batches of up to 200, idempotent (the row's `event_key` is the key sent to the CRM), retried
with backoff, and with every per-record failure kept on its row for the admin.

Core calls the `note_*` functions inside the transaction that records the event (delivery reports, clicks,
replies, opt-outs); they add one row per active connection that knows the contact, and nothing otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import db
from core.models import Campaign, ExternalId, Message, PluginConnection, PluginOutbox
from core.models.base import utcnow
from core.plugins import connections
from core.plugins.contract import ActivityEvent, WriteResult
from core.plugins.errors import FatalPluginError, PluginError, RetriablePluginError
from core.runtime import Runtime

log = logging.getLogger(__name__)

CHUNK = 500  # ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits
BATCH = 200  # events per write_back call: one sObject Collections request holds at most 200 records
MAX_ATTEMPTS = 5  # per-record failures after which a row stays `failed`
BACKOFF_S = (60, 300, 1800, 7200)  # seconds before attempt 2, 3, 4, 5
PAUSE_KEY = "smsconnect:plugin:{id}:paused"  # set while the CRM asks us to back off (Redis, TTL = retry_after)

DELIVERY_KINDS = {"delivered": "delivered", "undelivered": "failed", "expired": "failed", "error": "failed"}


@dataclass(frozen=True)
class Activity:
    """An event about one of our contacts, before it is addressed to a CRM record."""

    key: str
    kind: str
    contact_id: int
    at: datetime
    payload: Mapping[str, Any]


def note_delivery(session: Session, workspace_id: int, statuses: Mapping[int, str],
                  connections: Sequence[PluginConnection] | None = None) -> int:
    """Delivery reports that changed messages (message id → our new status); only final ones are written.
    `connections`, the workspace's active ones, may be read beforehand (core/delivery.py reads them before it
    takes SQLite's write lock); None reads them here."""
    wanted = {mid: DELIVERY_KINDS[s] for mid, s in statuses.items() if s in DELIVERY_KINDS}
    if not wanted or not (connections if connections is not None else _active(session, workspace_id)):
        return 0
    ids = sorted(wanted)
    rows = [row for start in range(0, len(ids), CHUNK) for row in session.execute(
        select(Message.id, Message.contact_id, Message.text, Message.status, Message.reason, Campaign.name)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id).where(Message.id.in_(ids[start:start + CHUNK]))
        .order_by(Message.id))]
    now = utcnow()
    return add(session, workspace_id, [
        Activity(f"msg-{r.id}-{wanted[r.id]}", wanted[r.id], r.contact_id, now,
                 {"text": r.text, "status": r.status, "campaign": r.name, "detail": r.reason})
        for r in rows if r.contact_id is not None])


def note_click(session: Session, workspace_id: int, message_id: int, at: datetime | None = None) -> int:
    """The first click on a message's link (later clicks add nothing: the key is per message)."""
    if not _active(session, workspace_id):
        return 0
    row = session.execute(select(Message.contact_id, Message.text, Campaign.name)
                          .outerjoin(Campaign, Campaign.id == Message.campaign_id)
                          .where(Message.id == message_id)).first()
    if row is None or row.contact_id is None:
        return 0
    return add(session, workspace_id, [Activity(f"click-{message_id}", "clicked", row.contact_id, at or utcnow(),
                                                {"text": row.text, "campaign": row.name, "status": "clicked"})])


def note_reply(session: Session, workspace_id: int, contact_id: int, text: str, key: str,
               at: datetime | None = None) -> int:
    """An inbound SMS from a contact; `key` is the gateway's message id."""
    if not _active(session, workspace_id):
        return 0
    return add(session, workspace_id, [Activity(f"reply-{key}", "replied", contact_id, at or utcnow(),
                                                {"text": text, "status": "received"})])


def note_opt_out(session: Session, workspace_id: int, contact_id: int, category: str,
                 at: datetime | None = None) -> int:
    if not _active(session, workspace_id):
        return 0
    moment = at or utcnow()
    return add(session, workspace_id, [Activity(f"optout-{contact_id}-{category}-{int(moment.timestamp())}",
                                                "opted_out", contact_id, moment,
                                                {"status": "opted out", "detail": category})])


def active_connections(session: Session, workspace_id: int) -> list[PluginConnection]:
    """The workspace's active plugin connections (empty: nothing to write back)."""
    return _active(session, workspace_id)


def _active(session: Session, workspace_id: int) -> list[PluginConnection]:
    return list(session.scalars(select(PluginConnection).where(PluginConnection.workspace_id == workspace_id,
                                                               PluginConnection.status == "active")))


def add(session: Session, workspace_id: int, activities: Sequence[Activity]) -> int:
    """Queues the activities for every active connection whose CRM knows the contact; a key already queued
    for a connection is skipped. Returns the rows added."""
    added = 0
    contact_ids = list({a.contact_id for a in activities})
    for connection in _active(session, workspace_id):
        known = {cid: ext for start in range(0, len(contact_ids), CHUNK) for cid, ext in session.execute(
            select(ExternalId.contact_id, ExternalId.external_id).where(
                ExternalId.source == connection.plugin,
                ExternalId.contact_id.in_(contact_ids[start:start + CHUNK])))}
        rows = [{"connection_id": connection.id, "event_key": a.key[:120], "kind": a.kind,
                 "record_id": known[a.contact_id], "payload": dict(a.payload), "at": a.at, "status": "pending",
                 "attempts": 0, "next_attempt_at": utcnow(), "created_at": utcnow()}
                for a in activities if a.contact_id in known]
        if rows:
            statement = db.insert_for(session)(PluginOutbox).on_conflict_do_nothing(
                index_elements=["connection_id", "event_key"]).returning(PluginOutbox.id)
            added += len(session.execute(statement, rows).all())  # RETURNING lists only the rows inserted
    return added


@dataclass
class FlushResult:
    calls: int = 0
    written: int = 0
    failed: int = 0
    paused: bool = False


def flush(rt: Runtime, connection_id: int, http: requests.Session | None = None,
          max_batches: int | None = None) -> FlushResult:
    """Writes due rows in batches of BATCH, one write_back call each, committing each batch's results.

    A retriable error pauses the connection's write-back for `retry_after` (rows stay pending); a fatal one
    stops the connection. One job per connection runs at a time (its job id), so batches never overlap.
    """
    result = FlushResult()
    if rt.redis.exists(PAUSE_KEY.format(id=connection_id)):
        result.paused = True
        return result
    with db.transaction(rt.sessions) as session:
        connection = session.get(PluginConnection, connection_id)
        if connection is None or connection.status != "active":
            return result
        plugin = connections.build(rt.settings, connection, http)
    columns = (PluginOutbox.id, PluginOutbox.event_key, PluginOutbox.kind, PluginOutbox.record_id,
               PluginOutbox.payload, PluginOutbox.at, PluginOutbox.attempts)
    while max_batches is None or result.calls < max_batches:
        with db.transaction(rt.sessions) as session:
            rows = session.execute(select(*columns).where(
                PluginOutbox.connection_id == connection_id, PluginOutbox.status == "pending",
                PluginOutbox.next_attempt_at <= utcnow()).order_by(PluginOutbox.id).limit(BATCH)).all()
            if not rows:
                break
            try:
                results = plugin.write_back([_event(row) for row in rows])
            except PluginError as exc:
                _stop_or_pause(rt, session, connection_id, exc)
                result.paused = isinstance(exc, RetriablePluginError)
                break
            result.calls += 1
            # One executemany UPDATE by primary key for the whole batch (the ORM's bulk UPDATE).
            session.execute(update(PluginOutbox), _store(rows, results, result))
            connection = session.get(PluginConnection, connection_id)
            if connection is not None:
                connections.record_usage(connection, plugin)
    return result


def _event(row: Any) -> ActivityEvent:
    p = row.payload or {}
    return ActivityEvent(id=row.event_key, kind=row.kind, record_id=row.record_id, at=row.at,
                         text=p.get("text") or "", status=p.get("status") or "", campaign=p.get("campaign"),
                         detail=p.get("detail"))


def _store(rows: Sequence[Any], results: Sequence[WriteResult], out: FlushResult) -> list[dict[str, Any]]:
    """The new state of each row: done, or its error and next attempt (failed for good after MAX_ATTEMPTS)."""
    by_key = {r.event_id: r for r in results}
    now = utcnow()
    changes = []
    for row in rows:
        found = by_key.get(row.event_key) or WriteResult(row.event_key, False, "the plugin returned no result")
        attempts = row.attempts + 1
        if found.ok:
            changes.append({"id": row.id, "attempts": attempts, "status": "done", "done_at": now,
                            "remote_id": found.remote_id, "last_error": None})
            out.written += 1
            continue
        out.failed += 1
        change = {"id": row.id, "attempts": attempts, "last_error": found.error, "status": "pending",
                  "next_attempt_at": now + timedelta(seconds=BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1])}
        if attempts >= MAX_ATTEMPTS:
            change["status"] = "failed"
        changes.append(change)
    return changes


def _stop_or_pause(rt: Runtime, session: Session, connection_id: int, exc: PluginError) -> None:
    connection = session.get(PluginConnection, connection_id)
    if connection is not None:
        connections.record_error(connection, exc)
    if isinstance(exc, RetriablePluginError):
        rt.redis.set(PAUSE_KEY.format(id=connection_id), 1, ex=max(1, int(exc.retry_after)))
        log.info("write-back of connection %s paused %ss: %s", connection_id, exc.retry_after, exc)
    elif not isinstance(exc, FatalPluginError):
        raise exc


def due_connections(session: Session) -> list[int]:
    """Active connections with rows due now (for the periodic job)."""
    return list(session.scalars(select(PluginOutbox.connection_id).join(
        PluginConnection, PluginConnection.id == PluginOutbox.connection_id).where(
        PluginConnection.status == "active", PluginOutbox.status == "pending",
        PluginOutbox.next_attempt_at <= utcnow()).distinct()))


def counts(session: Session, connection_id: int) -> dict[str, int]:
    rows = session.execute(select(PluginOutbox.status, func.count()).where(
        PluginOutbox.connection_id == connection_id).group_by(PluginOutbox.status)).all()
    return {status: n for status, n in rows}


def failures(session: Session, connection_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The latest rows that failed at least once, with the CRM's error."""
    rows = session.scalars(select(PluginOutbox).where(PluginOutbox.connection_id == connection_id,
                                                      PluginOutbox.last_error.is_not(None))
                           .order_by(PluginOutbox.id.desc()).limit(limit))
    return [{"event_key": r.event_key, "kind": r.kind, "record_id": r.record_id, "status": r.status,
             "attempts": r.attempts, "error": r.last_error, "next_attempt_at": r.next_attempt_at} for r in rows]


def retry_failed(session: Session, connection_id: int) -> int:
    """Puts failed rows back in the queue (after the admin fixed the cause)."""
    outcome = session.execute(update(PluginOutbox).where(PluginOutbox.connection_id == connection_id,
                                                         PluginOutbox.status == "failed")
                              .values(status="pending", attempts=0, next_attempt_at=utcnow()))
    return outcome.rowcount or 0  # type: ignore[attr-defined]
