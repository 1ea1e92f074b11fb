"""Dispatching transactional messages: their own RQ queue (taken before campaign traffic), their own
per-workspace throttle, and the campaigns' exactly-once design: claim with a lease, send with the message's
idempotency key, record results in bulk, and give back the claims of dead workers (core/dispatch.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from core import dispatch, queues
from core.models import Message, Workspace
from core.models.base import as_utc, utcnow
from core.throttle import Gate, Throttle

log = logging.getLogger(__name__)

DEFAULT_PER_HOUR = 360_000  # per workspace; workspace.settings["transactional_per_hour"] overrides it
MAX_BATCH = 100  # messages per claim: small, so a code queued now goes out within one batch
BATCH_SECONDS = 1.0  # a batch holds about this much sending time at the workspace's rate
JOB_SECONDS = 10.0  # a job hands over to a fresh one after this long
QUEUED_KEY = "smsconnect:transactional:{}:queued"  # set while a job for the workspace waits in the queue
QUEUED_TTL_S = 30  # if that job is lost, the recovery sweep kicks the workspace again after this
RETRY_AUTH_S = 60.0  # after the provider refused our credentials


def throttle_slot(workspace_id: int) -> int:
    """The throttle's timeline id for a workspace's transactional traffic; negative, so never a campaign's."""
    return -workspace_id


def kick(redis_conn: Any, workspace_id: int, delay_s: float = 0) -> None:
    """Queues a dispatch job for the workspace, unless one is already waiting to start."""
    if delay_s > 0:
        queues.enqueue_transactional(redis_conn, workspace_id, delay_s)
    elif redis_conn.set(QUEUED_KEY.format(workspace_id), 1, nx=True, ex=QUEUED_TTL_S):
        queues.enqueue_transactional(redis_conn, workspace_id)


def kick_after_commit(rt: Any, session: Session, workspace_id: int) -> None:
    """Kicks once the caller's transaction commits, so the job always finds the messages."""

    def after_commit(_session: Session) -> None:
        try:
            kick(rt.redis, workspace_id)
        except Exception:  # noqa: BLE001 - the sweep re-kicks within seconds; the commit stands
            log.exception("could not queue transactional dispatch for workspace %s", workspace_id)

    event.listen(session, "after_commit", after_commit, once=True)


def per_hour(session: Session, workspace_id: int) -> int:
    ws = session.get(Workspace, workspace_id)
    value = (ws.settings or {}).get("transactional_per_hour") if ws else None
    return int(value) if value else DEFAULT_PER_HOUR


def claim(session: Session, workspace_id: int, n: int, lease_s: float) -> list[dispatch.Claimed]:
    """Takes up to n due transactional messages (oldest first); those past their validity become `expired`."""
    now = utcnow()
    query = (select(Message.id, Message.created_at, Message.validity_s).where(
        Message.campaign_id.is_(None), Message.status == "waiting", Message.workspace_id == workspace_id,
        Message.claim.is_(None), or_(Message.send_after.is_(None), Message.send_after <= now),
    ).order_by(Message.id).limit(n))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    expired = [mid for mid, created, validity in rows if validity and as_utc(created) + timedelta(
        seconds=validity) < now]
    if expired:
        session.execute(update(Message).where(Message.id.in_(expired), Message.status == "waiting").values(
            status="expired", status_at=now, reason="its validity ran out before it could be sent"))
    ids = [mid for mid, _, _ in rows if mid not in set(expired)]
    return dispatch.take(session, ids, lease_s, now)


def run(rt: Any, workspace_id: int) -> None:
    """One dispatch job: claim, reserve send times, send, record; for JOB_SECONDS, then hand over."""
    from core import provider_accounts, runner

    rt.redis.delete(QUEUED_KEY.format(workspace_id))  # messages accepted from now on kick a new job
    deadline = time.monotonic() + JOB_SECONDS
    throttle = Throttle(rt.redis, rt.settings.throttle_transit_ms / 1000)
    provider: Any = None
    name = ""
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            if provider is None:
                account = provider_accounts.get_default(session, workspace_id)
                if account is None:
                    _fail_waiting(session, workspace_id, "no SMS provider is configured for this workspace")
                    return
                provider, name = runner.build_provider(rt, account), account.provider
            rate = per_hour(session, workspace_id)
            n = max(1, min(MAX_BATCH, int(rate / 3600 * BATCH_SECONDS)))
            batch = claim(session, workspace_id, n, n * 3600 / rate + rt.settings.lease_margin_s)
            if not batch:
                _kick_when_due(rt, session, workspace_id)
                return
        times = throttle.reserve(throttle_slot(workspace_id), workspace_id, len(batch), rate)
        gate = throttle.gate(throttle_slot(workspace_id), workspace_id, rate)
        if send_batch(rt, provider, name, workspace_id, batch, times, gate) != "ok":
            return
    kick(rt.redis, workspace_id)


def _kick_when_due(rt: Any, session: Session, workspace_id: int) -> None:
    """A scheduled message due within a minute gets its own delayed job; later ones the sweep finds."""
    due = session.scalar(select(func.min(Message.send_after)).where(
        Message.campaign_id.is_(None), Message.status == "waiting", Message.workspace_id == workspace_id,
        Message.claim.is_(None)))
    if due is not None:
        wait = (as_utc(due) - utcnow()).total_seconds()
        if 0 < wait <= 60:
            kick(rt.redis, workspace_id, wait)


def _fail_waiting(session: Session, workspace_id: int, reason: str) -> None:
    session.execute(update(Message).where(Message.campaign_id.is_(None), Message.workspace_id == workspace_id,
                                          Message.status == "waiting", Message.claim.is_(None))
                    .values(status="error", reason=reason, status_at=utcnow()))


def send_batch(rt: Any, provider: Any, provider_name: str, workspace_id: int, batch: Sequence[dispatch.Claimed],
               times: Sequence[float], gate: Gate | None = None) -> str:
    """Hands messages over at their reserved times; results are written at least every FLUSH_EVERY_S."""
    from core.providers.base import ProviderAuthFailed, ProviderUnavailable
    from core.runner import send_due

    ids_by_key = {m.key: m.id for m in batch}
    pending: list[Any] = []
    last_flush = time.monotonic()
    i = 0
    try:
        while i < len(batch):
            wait = times[i] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            i = send_due(provider, batch, i, times, gate, pending)
            if time.monotonic() - last_flush >= dispatch.FLUSH_EVERY_S:
                _flush(rt, provider_name, pending, ids_by_key)
                last_flush = time.monotonic()
    except (ProviderAuthFailed, ProviderUnavailable) as exc:
        pending.extend(exc.partial)  # sent before the failure: recorded, never sent again
        done = {r.key for r in pending}
        _flush(rt, provider_name, pending, ids_by_key)
        with rt.sessions() as session, session.begin():
            dispatch.release(session, [m.id for m in batch if m.key not in done])
        retry = RETRY_AUTH_S if isinstance(exc, ProviderAuthFailed) else getattr(exc, "retry_after", None) or 10.0
        log.warning("transactional dispatch of workspace %s: %s; retrying in %.0f s", workspace_id, exc, retry)
        kick(rt.redis, workspace_id, retry)
        return "retry"
    _flush(rt, provider_name, pending, ids_by_key)
    return "ok"


def _flush(rt: Any, provider_name: str, pending: list[Any], ids_by_key: dict[str, int]) -> None:
    if pending:
        with rt.sessions() as session, session.begin():
            dispatch.record_results(session, provider_name, pending, ids_by_key)
        pending.clear()


def recover(rt: Any) -> dict[str, int]:
    """The periodic sweep: gives back dead workers' claims, kicks workspaces with due messages (scheduled ones
    included), and forgets Idempotency-Key answers older than 24 hours."""
    from core import idempotency, provider_accounts, providers

    report = {"released": 0, "kicked": 0, "keys_purged": 0}
    now = utcnow()
    with rt.sessions() as session, session.begin():
        stale = session.execute(select(Message.id, Message.workspace_id).where(
            Message.campaign_id.is_(None), Message.status == "waiting", Message.claim.is_not(None),
            Message.claimed_until < now)).all()
        by_ws: dict[int, list[int]] = {}
        for mid, ws_id in stale:
            by_ws.setdefault(ws_id, []).append(mid)
        for ws_id, ids in by_ws.items():
            account = provider_accounts.get_default(session, ws_id)
            safe = account is not None and bool(getattr(providers.get(account.provider), "idempotent", False))
            dispatch.give_back(session, ids, safe)
            report["released"] += len(ids)
        due = list(session.scalars(select(Message.workspace_id).where(
            Message.campaign_id.is_(None), Message.status == "waiting", Message.claim.is_(None),
            or_(Message.send_after.is_(None), Message.send_after <= now)).distinct()))
        report["keys_purged"] = idempotency.purge(session)
    for ws_id in due:
        kick(rt.redis, ws_id)
        report["kicked"] += 1
    return report
