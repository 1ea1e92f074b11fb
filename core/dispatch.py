"""Sending a campaign: lanes of RQ jobs lease batches, the Redis throttle spaces them, providers send them.

Exactly once: a lane leases a batch (one dispatch_leases row naming its messages, with a deadline) before it
sends it, writes the results in bulk as they come, and ends the lease with the last of them; every message
carries its idempotency key to the provider. When a worker dies mid-batch, its lease runs out and `recover`
gives the messages back: providers that de-duplicate by key get them again (nothing is sent twice), the others
are marked `error` with the reason rather than risk a duplicate. Transactional messages (core/transactional.py)
are claimed one by one instead (`take`: claim token + deadline on the message).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from core import bulk, campaigns, db, lifecycle
from core.models import Campaign, DispatchLease, Message, Workspace
from core.models.base import utcnow

log = logging.getLogger(__name__)

JOB_SECONDS = 20.0  # a lane hands over to a fresh job after this long, so RQ timeouts never bite
BATCH_SECONDS = 5.0  # a batch holds about this much sending time: pause acts within one batch
MAX_BATCH = 500
FLUSH_EVERY_S = 0.2  # results reach the database at least this often
HALT_KEY = "smsconnect:campaign:{}:halt"
LANE_KEY = "smsconnect:campaign:{}:lane:{}"


class Claimed(NamedTuple):
    """A claimed message, as the lane sends it (a tuple: a batch builds hundreds of them). Its cost is left out:
    turning each into a Decimal cost 2 µs a message, and only a budget cap needs it (`cost_of`)."""

    id: int
    key: str
    phone: str
    sender: str | None
    text: str
    parts: int


_M = Message.__table__.c
_LEASES = DispatchLease.__table__
_L = _LEASES.c


def batch_size(per_hour: int | None) -> int:
    if not per_hour:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(per_hour / 3600 * BATCH_SECONDS)))


class Lease(NamedTuple):
    """A batch a lane is sending: its dispatch_leases row's token (empty when nothing was due) and its messages."""

    token: str
    messages: list[Claimed]


_CLAIMED = (_M.id, _M.idempotency_key, _M.phone, _M.sender, _M.text, _M.parts)


# The campaign's waiting messages (parameters: the campaign's id, twice), read from ix_messages_dispatch. The row
# comparison says again what the two equalities say; it only makes PostgreSQL use that index. Without it, given
# `ORDER BY id LIMIT n`, PostgreSQL walked the primary key from the campaign's first message and filtered out every
# message already sent, at every lease (4.2 against 0.8 ms with 10,000 sent, and growing with the campaign); and
# with stale statistics it scanned the whole table for `unfinished` (25 against 1.3 ms at 117,000 messages).
# SQLite used that index either way.
_WAITING = "campaign_id = ? AND status = 'waiting' AND (campaign_id, status, id) > (?, 'waiting', 0)"


def claim(session: Session, campaign_id: int, n: int, lease_s: float) -> Lease:
    """Leases up to n due waiting messages of the campaign (oldest first) to this lane, as one dispatch_leases
    row, not an update of each message: that wrote 500 rows a batch under SQLite's one write lock.

    The campaign's row is locked first (core/db.py `lock_row`), so the lanes of a campaign lease one at a time and
    each sees the leases committed before it: it skips every message between `lo` and `hi` of another lease,
    and the messages it takes have no results yet (a lane deletes its lease with the last results).
    """
    now = utcnow()
    db.lock_row(session, Campaign.__table__, campaign_id)
    taken = bulk.driver_rows(session, "SELECT lo, hi FROM dispatch_leases WHERE campaign_id = ?", (campaign_id,))
    rows = bulk.driver_rows(session, _LEASE_SELECT.format("".join(" AND NOT (id BETWEEN ? AND ?)" for _ in taken)), (
        campaign_id, campaign_id, bulk.driver_value(session, _M.send_after, now),
        *(bound for lo_hi in taken for bound in lo_hi), n))
    if not rows:
        return Lease("", [])
    token = uuid.uuid4().hex
    ids = [row[0] for row in rows]
    session.connection().execute(_NEW_LEASE, {"token": token, "campaign_id": campaign_id, "lo": ids[0], "hi": ids[-1],
                                              "ids": ids, "until": now + timedelta(seconds=lease_s)})
    return Lease(token, list(map(Claimed._make, rows)))


# claim's SELECT, as SQL on the driver's cursor: it runs under the lock, where building it with SQLAlchemy and
# turning its rows into Row objects took about half of a lease's time (in process: 12.6-14.6 → 4.8-8.6 µs a
# message, with the leases query and the INSERT done the same way): the waiting messages, unclaimed, due, and
# outside the other leases.
_LEASE_SELECT = ("SELECT id, idempotency_key, phone, sender, text, parts FROM messages WHERE " + _WAITING +
                 " AND claim IS NULL AND (send_after IS NULL OR send_after <= ?){} ORDER BY id LIMIT ?")
_NEW_LEASE = insert(_LEASES)
_END_LEASE = delete(_LEASES).where(_L.token == bindparam("token"))


def end_lease(session: Session, token: str) -> None:
    """Ends a lane's lease: its messages that are still waiting can be leased again."""
    if token:
        session.connection().execute(_END_LEASE, {"token": token})  # built once: it runs under SQLite's lock


def leased(session: Session, campaign_id: int, message_ids: Sequence[int]) -> set[int]:
    """Those of the campaign's `message_ids` that a lane is sending (in one of its leases)."""
    wanted = set(message_ids)
    return {mid for (ids,) in session.execute(select(_L.ids).where(_L.campaign_id == campaign_id))
            for mid in ids if mid in wanted}


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
        .returning(*_CLAIMED)
    ).all()
    return sorted(map(Claimed._make, rows))  # by id, the first field


def release(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(update(Message).where(Message.id.in_(list(ids)), Message.status == "waiting")
                        .values(claim=None, claimed_until=None))


def spent(session: Session, campaign_id: int) -> Decimal:
    """What the campaign's messages handed to the provider cost."""
    return Decimal(str(session.scalar(select(func.coalesce(func.sum(_M.cost), 0)).where(
        _M.campaign_id == campaign_id, _M.status.not_in(("waiting", "enqueue_failed")))) or 0))


def cost_of(session: Session, ids: Sequence[int]) -> Decimal:
    """What these messages cost."""
    return Decimal(str(session.scalar(select(func.coalesce(func.sum(_M.cost), 0)).where(_M.id.in_(list(ids))))
                       or 0))


def record_results(session: Session, provider: str, results: Sequence[Any], ids_by_key: dict[str, int]) -> None:
    """Writes send results in bulk: an UPDATE .. FROM for the accepted and one for the rejected
    (core/bulk.py). A delivery report that raced ahead keeps its status."""
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


def stale_leases(session: Session, campaign_ids: Sequence[int]) -> list[tuple[str, int, list[int]]]:
    """(token, campaign id, message ids) of leases that ran out: their lane's worker died mid-batch."""
    rows = session.execute(select(_L.token, _L.campaign_id, _L.ids).where(
        _L.campaign_id.in_(list(campaign_ids)), _L.until < utcnow())).all()
    return [(token, cid, list(ids)) for token, cid, ids in rows]


def stale_claims(session: Session, campaign_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(message id, campaign id) of claims on campaign messages whose deadline passed. This version leases
    campaign batches instead; such claims come from a worker of an earlier version, stopped by an upgrade
    mid-batch, and are given back like a dead worker's lease."""
    rows = session.execute(select(_M.id, _M.campaign_id).where(
        _M.campaign_id.in_(list(campaign_ids)), _M.status == "waiting", _M.claim.is_not(None),
        _M.claimed_until < utcnow())).all()
    return [(mid, cid) for mid, cid in rows]


def give_back(session: Session, ids: Sequence[int], resend_safe: bool) -> None:
    """Gives back a dead worker's messages: re-sendable (their claims cleared, if they have any), or failed with
    the reason."""
    if not ids:
        return
    if resend_safe:
        release(session, ids)
        return
    session.execute(update(Message).where(Message.id.in_(list(ids)), Message.status == "waiting").values(
        status="error", claim=None, claimed_until=None, status_at=utcnow(),
        reason="the worker stopped while sending; not re-sent because this provider cannot de-duplicate"))


def give_back_lease(session: Session, token: str, ids: Sequence[int], resend_safe: bool) -> int:
    """Ends the lease of a dead worker: its messages still waiting are sent again, or failed with the reason
    (`give_back`). Returns how many were still waiting."""
    waiting = [mid for (mid,) in session.execute(select(_M.id).where(_M.id.in_(list(ids)), _M.status == "waiting"))]
    if not resend_safe:
        give_back(session, waiting, resend_safe)
    end_lease(session, token)
    return len(waiting)


def workspace_cap(session: Session, workspace_id: int) -> int | None:
    """The workspace's messages/hour cap over all its campaigns, if it has one (its settings' column only: a lane
    reads it before every batch)."""
    settings = session.execute(_WORKSPACE_SETTINGS, {"id": workspace_id}).scalar()
    cap = (settings or {}).get("throttle_per_hour")
    return int(cap) if cap else None


_W = Workspace.__table__.c
_WORKSPACE_SETTINGS = select(_W.settings).where(_W.id == bindparam("id"))


def suspend(session: Session, campaign: Campaign, reason: str, redis_conn: Any) -> None:
    if (("suspend", campaign.status)) in lifecycle.TRANSITIONS:
        campaigns.set_status(campaign, "suspend", reason)
        set_halt(redis_conn, campaign.id, True)
        log.warning("campaign %s suspended: %s", campaign.id, reason)


def unfinished(session: Session, campaign_id: int) -> bool:
    """Whether any message of the campaign still waits (leased or not, due or not)."""
    return bool(bulk.driver_rows(session, f"SELECT id FROM messages WHERE {_WAITING} LIMIT 1",
                                 (campaign_id, campaign_id)))

