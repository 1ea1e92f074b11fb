"""Sending a campaign: lanes of RQ jobs claim batches, the Redis throttle spaces them, providers send them.

Exactly once: a message is claimed (claim token + lease) before it is sent, its result is written in bulk
right after, and it always carries its idempotency key to the provider. When a worker dies mid-batch, its
lease runs out and `recover` gives the messages back: providers that de-duplicate by key get them again
(nothing is sent twice), the others are marked `error` with the reason rather than risk a duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from core import campaigns, lifecycle
from core.models import Campaign, Message, Workspace
from core.models.base import utcnow

log = logging.getLogger(__name__)

JOB_SECONDS = 20.0  # a lane hands over to a fresh job after this long, so RQ timeouts never bite
BATCH_SECONDS = 5.0  # a batch holds about this much sending time: pause acts within one batch
MAX_BATCH = 500
FLUSH_EVERY_S = 0.2  # results reach the database at least this often
HALT_KEY = "smsconnect:campaign:{}:halt"
LANE_KEY = "smsconnect:campaign:{}:lane:{}"


class Claimed(NamedTuple):
    """A claimed message, as the lane sends it (a tuple: a batch builds hundreds of them)."""

    id: int
    key: str
    phone: str
    sender: str | None
    text: str
    parts: int
    cost: Any


def batch_size(per_hour: int | None) -> int:
    if not per_hour:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(per_hour / 3600 * BATCH_SECONDS)))


def claim(session: Session, campaign_id: int, n: int, lease_s: float) -> list[Claimed]:
    """Takes up to n due waiting messages (oldest first) for this worker in one UPDATE .. WHERE id IN (SELECT ..
    LIMIT n) .. RETURNING; another worker never gets the same ones (PostgreSQL: the inner SELECT skips rows
    another claim has locked; SQLite: the statement runs under the database's write lock)."""
    now = utcnow()
    table = Message.__table__
    due = (
        select(table.c.id).where(
            table.c.campaign_id == campaign_id, table.c.status == "waiting", table.c.claim.is_(None),
            or_(table.c.send_after.is_(None), table.c.send_after <= now),
        ).order_by(table.c.id).limit(n)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return _claim_where(session, table.c.id.in_(due.scalar_subquery()), lease_s, now)


def take(session: Session, ids: Sequence[int], lease_s: float, now: Any) -> list[Claimed]:
    """Claims those of `ids` that are still waiting and unclaimed.

    The ids come from an earlier SELECT, which may be stale by now: another worker can have claimed, sent and
    recorded them since (claim cleared again, status `sent`). So the UPDATE checks the status as well as the
    claim; checking the claim alone sent such a batch twice in the unthrottled bench.
    """
    if not ids:
        return []
    return _claim_where(session, Message.__table__.c.id.in_(list(ids)), lease_s, now)


def _claim_where(session: Session, which: Any, lease_s: float, now: Any) -> list[Claimed]:
    table = Message.__table__
    rows = session.execute(
        update(table).where(which, table.c.claim.is_(None), table.c.status == "waiting")
        .values(claim=uuid.uuid4().hex, claimed_until=now + timedelta(seconds=lease_s))
        .returning(table.c.id, table.c.idempotency_key, table.c.phone, table.c.sender, table.c.text,
                   table.c.parts, table.c.cost)
    ).all()
    return sorted(map(Claimed._make, rows))  # by id, the first field


def release(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(update(Message).where(Message.id.in_(list(ids)), Message.status == "waiting")
                        .values(claim=None, claimed_until=None))


def spent(session: Session, campaign_id: int) -> Any:
    return session.scalar(select(func.coalesce(func.sum(Message.cost), 0)).where(
        Message.campaign_id == campaign_id, Message.status.not_in(("waiting", "enqueue_failed")))) or 0


def remaining(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                     Message.status == "waiting")) or 0


def record_results(session: Session, provider: str, results: Sequence[Any], ids_by_key: dict[str, int]) -> None:
    """Writes send results in bulk: an UPDATE .. FROM for the accepted and one for the rejected
    (core/bulk.py). A delivery report that raced ahead keeps its status."""
    from core import bulk

    now = utcnow()
    table = Message.__table__
    accepted = [(ids_by_key[r.key], r.provider_message_id) for r in results if r.accepted]
    rejected = [(ids_by_key[r.key], r.error or "rejected by the provider", r.error_code)
                for r in results if not r.accepted]
    bulk.update_from_rows(
        session, table, "id", ("id", "provider_message_id"), accepted,
        "status = CASE WHEN messages.status = 'waiting' THEN 'sent' ELSE messages.status END, "
        "provider = :provider, provider_message_id = new.provider_message_id, sent_at = :sent_at, "
        "status_at = :status_at, claim = NULL, claimed_until = NULL",
        params={"provider": provider, "sent_at": now, "status_at": now})
    bulk.update_from_rows(
        session, table, "id", ("id", "reason", "error_code"), rejected,
        "status = 'error', reason = new.reason, error_code = new.error_code, provider = :provider, "
        "status_at = :status_at, claim = NULL, claimed_until = NULL",
        where="messages.status = 'waiting'", params={"provider": provider, "status_at": now})


def halted(redis_conn: Any, campaign_id: int) -> bool:
    return bool(redis_conn.exists(HALT_KEY.format(campaign_id)))


def set_halt(redis_conn: Any, campaign_id: int, on: bool) -> None:
    if on:
        redis_conn.set(HALT_KEY.format(campaign_id), 1, ex=24 * 3600)
    else:
        redis_conn.delete(HALT_KEY.format(campaign_id))


def stale_claims(session: Session, campaign_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(message id, campaign id) of claims whose lease ran out: their worker died mid-batch."""
    rows = session.execute(select(Message.id, Message.campaign_id).where(
        Message.campaign_id.in_(list(campaign_ids)), Message.status == "waiting", Message.claim.is_not(None),
        Message.claimed_until < utcnow())).all()
    return [(mid, cid) for mid, cid in rows]


def give_back(session: Session, ids: Sequence[int], resend_safe: bool) -> None:
    """Returns leased-out messages of a dead worker: re-sendable, or failed with the reason."""
    if not ids:
        return
    if resend_safe:
        release(session, ids)
        return
    session.execute(update(Message).where(Message.id.in_(list(ids)), Message.status == "waiting").values(
        status="error", claim=None, claimed_until=None, status_at=utcnow(),
        reason="the worker stopped while sending; not re-sent because this provider cannot de-duplicate"))


def workspace_cap(session: Session, workspace_id: int) -> int | None:
    ws = session.get(Workspace, workspace_id)
    cap = (ws.settings or {}).get("throttle_per_hour") if ws else None
    return int(cap) if cap else None


def suspend(session: Session, campaign: Campaign, reason: str, redis_conn: Any) -> None:
    if (("suspend", campaign.status)) in lifecycle.TRANSITIONS:
        campaigns.set_status(campaign, "suspend", reason)
        set_halt(redis_conn, campaign.id, True)
        log.warning("campaign %s suspended: %s", campaign.id, reason)


def unfinished(session: Session, campaign_id: int) -> bool:
    return bool(session.scalar(select(Message.id).where(
        and_(Message.campaign_id == campaign_id, Message.status == "waiting")).limit(1)))

