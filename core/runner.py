"""Running campaigns: the Processing job, the dispatch lanes, and the recovery sweep (all RQ jobs)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import requests
from sqlalchemy import bindparam, select
from sqlalchemy.orm import defer, lazyload

from core import campaigns, dispatch, lifecycle, queues
from core.models import Campaign, ProviderAccount
from core.models.base import utcnow
from core.throttle import Gate, Throttle

log = logging.getLogger(__name__)

_http = requests.Session()  # one keep-alive pool per worker process


# --- provider ------------------------------------------------------------------------------------


def account_for(session: Any, campaign: Campaign) -> ProviderAccount | None:
    from core import provider_accounts

    if campaign.provider_account_id:
        account = session.get(ProviderAccount, campaign.provider_account_id)
        if account is not None and account.workspace_id == campaign.workspace_id:
            return account
    return provider_accounts.get_default(session, campaign.workspace_id)


def build_provider(rt: Any, account: ProviderAccount) -> Any:
    from core import provider_accounts

    return provider_accounts.provider_for(rt.settings, account, _http)


# --- lanes ----------------------------------------------------------------------------------------


def start_lanes(rt: Any, campaign_id: int, delay_s: float = 0) -> None:
    for lane in range(rt.settings.dispatch_lanes):
        queues.enqueue_lane(rt.redis, campaign_id, lane, delay_s)


# --- sending ----------------------------------------------------------------------------------


# A lane reads what it needs of its campaign and workspace before every batch as rows, without the ORM: 0.75 →
# 0.36 ms a batch. The Campaign object is loaded only when the lane changes the campaign, and then without what
# it never uses: the audience (which can list every contact id) and the variants (their own SELECT); 4.8 → 0.5 ms
# for 20,000 contact ids.
_LANE_LOAD = [defer(Campaign.audience), lazyload(Campaign.variants)]
_C = Campaign.__table__.c
_LANE_STATE = select(_C.status, _C.workspace_id, _C.throttle_per_hour, _C.budget_cap).where(_C.id == bindparam("id"))


def run_lane(rt: Any, campaign_id: int, lane: int, per_hour_override: int | None = None) -> None:
    """One dispatch lane: claim a batch, reserve its send times, send, record; for JOB_SECONDS, then hand over.

    A batch's last results, and the end of its lease, are written in the transaction that leases the next batch:
    on SQLite each write transaction waits its turn for the one write lock, and a lane waited twice a batch
    (about 8 ms each, with the web app storing reports beside it). If that transaction fails, the batch's lease
    is still there and runs out: `recover` gives its messages back as for a worker that died (they are not sent
    twice: see core/dispatch.py)."""
    rt.redis.set(dispatch.LANE_KEY.format(campaign_id, lane), 1, ex=int(dispatch.JOB_SECONDS * 3))
    deadline = time.monotonic() + dispatch.JOB_SECONDS
    throttle = Throttle(rt.redis, rt.settings.throttle_transit_ms / 1000)
    transactional = queues.queue(rt.redis, queues.TRANSACTIONAL)
    provider = None
    sent: list[Unwritten] = []  # the last batch's results not written yet
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            state = session.execute(_LANE_STATE, {"id": campaign_id}).first()
            write_sent(session, sent)
            if state is None or state.status not in (lifecycle.STARTED, lifecycle.SENDING):
                return
            if state.status == lifecycle.STARTED:
                _move(session, campaign_id, "send")  # unless the other lane did just now
            if provider is None:
                account = account_for(session, _campaign(session, campaign_id))
                if account is None:
                    dispatch.suspend(session, _campaign(session, campaign_id),
                                     "no SMS provider is configured for this workspace", rt.redis)
                    return
                provider, provider_name = build_provider(rt, account), account.provider
            per_hour = per_hour_override if per_hour_override is not None else state.throttle_per_hour
            n = dispatch.batch_size(per_hour)
            margin = rt.settings.lease_margin_s
            lease_s = n * 3600 / per_hour + margin if per_hour else margin
            # Read before the claim: on SQLite the claim takes the write lock, held until this block commits.
            ws_id, ws_cap = state.workspace_id, dispatch.workspace_cap(session, state.workspace_id)
            lease = dispatch.claim(session, campaign_id, n, lease_s)
            batch = lease.messages
            if not batch:
                if not dispatch.unfinished(session, campaign_id):
                    _move(session, campaign_id, "finish")  # unless the other lane did, before this one's lease
                    return
                queues.enqueue_lane(rt.redis, campaign_id, lane, 2.0)  # the rest is claimed or waits for a window
                return
            if state.budget_cap is not None:
                planned = dispatch.cost_of(session, [m.id for m in batch])
                if dispatch.spent(session, campaign_id) + planned > state.budget_cap:
                    dispatch.end_lease(session, lease.token)
                    dispatch.suspend(session, _campaign(session, campaign_id),
                                     f"the budget cap of {state.budget_cap} is reached", rt.redis)
                    return
        times = throttle.reserve(campaign_id, ws_id, len(batch), per_hour, ws_cap) if per_hour else None
        gate = throttle.gate(campaign_id, ws_id, per_hour, ws_cap) if per_hour else None
        outcome = send_batch(rt, provider, provider_name, campaign_id, lease, times, gate, sent)
        if outcome != "ok":
            return
        if transactional.count:
            break  # one-time codes and order updates go first: hand the worker over between batches
        rt.redis.set(dispatch.LANE_KEY.format(campaign_id, lane), 1, ex=int(dispatch.JOB_SECONDS * 3))
    if sent:
        with rt.sessions() as session, session.begin():
            write_sent(session, sent)
    queues.enqueue_lane(rt.redis, campaign_id, lane, 0)


class Unwritten(NamedTuple):
    """A sent batch's results not written yet, and its lease's token."""

    provider_name: str
    results: list[Any]
    ids_by_key: dict[str, int]
    token: str


def write_sent(session: Any, sent: list[Unwritten]) -> None:
    """Writes the results kept in `sent` and ends their leases, in the session's transaction; empties `sent`."""
    for kept in sent:
        _write(session, *kept)
    sent.clear()


def _write(session: Any, provider_name: str, results: Sequence[Any], ids_by_key: dict[str, int], token: str) -> None:
    """Writes send results and, given a lease's token, ends that lease, in the session's transaction."""
    if results:
        dispatch.record_results(session, provider_name, results, ids_by_key)
    dispatch.end_lease(session, token)


def _campaign(session: Any, campaign_id: int) -> Campaign:
    return session.get(Campaign, campaign_id, options=_LANE_LOAD)  # the session keeps it: loaded once a block


def _move(session: Any, campaign_id: int, action: str) -> None:
    """Takes the action if the campaign's status, read now, allows it: the lanes of a campaign both find it
    started, or both find nothing left to send, and the second must not fail on the first one's change."""
    campaign = _campaign(session, campaign_id)
    session.flush()  # this block's own change first (started → sending), then the status as stored now
    session.refresh(campaign, ["status"])
    if (action, campaign.status) in lifecycle.TRANSITIONS:
        campaigns.set_status(campaign, action)


def send_batch(rt: Any, provider: Any, provider_name: str, campaign_id: int, lease: dispatch.Lease,
               times: Sequence[float] | None, gate: Gate | None = None, keep: list[Unwritten] | None = None) -> str:
    """Hands a leased batch to the provider at its reserved times, in micro-groups of the messages that are due;
    through the gate, if given, one at a time. The last results end the lease (or, given `keep`, are added to it
    for the caller to write with its next lease): a stop (pause, abort, provider failure) ends it at once, so the
    messages not sent can be leased again."""
    from core.providers.base import ProviderAuthFailed, ProviderUnavailable

    batch = lease.messages
    ids_by_key = {m.key: m.id for m in batch}
    pending: list[Any] = []
    writer = _ResultWriter(rt, provider_name, ids_by_key)
    i = 0
    try:
        while i < len(batch):
            if times is not None:
                wait = times[i] - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if dispatch.halted(rt.redis, campaign_id):
                    writer.wait()
                    return _stop(rt, provider_name, pending, ids_by_key, lease.token, "halted")
            i = send_due(provider, batch, i, times, gate, pending)
            writer.maybe_start(pending)
    except ProviderAuthFailed as exc:
        writer.wait()
        pending.extend(exc.partial)  # sent before the failure: recorded, never sent again
        _stop(rt, provider_name, pending, ids_by_key, lease.token, "auth")
        with rt.sessions() as session, session.begin():
            dispatch.suspend(session, session.get(Campaign, campaign_id),
                             f"the SMS provider rejects our credentials: {exc}", rt.redis)
        return "suspended"
    except ProviderUnavailable as exc:
        log.warning("campaign %s: provider unavailable (%s); retrying later", campaign_id, exc)
        writer.wait()
        pending.extend(exc.partial)
        _stop(rt, provider_name, pending, ids_by_key, lease.token, "unavailable")
        retry = getattr(exc, "retry_after", None) or 10.0
        for lane in range(rt.settings.dispatch_lanes):
            queues.enqueue_lane(rt.redis, campaign_id, lane, retry)
        return "retry"
    except BaseException:
        writer.wait(reraise=False)  # the original error wins; unwritten results are recovered by lease
        raise
    writer.wait()
    if keep is None:
        _flush(rt, provider_name, pending, ids_by_key, lease.token)
    else:
        keep.append(Unwritten(provider_name, pending, ids_by_key, lease.token))
    return "ok"


def send_due(provider: Any, batch: Sequence[Any], i: int, times: Sequence[float] | None, gate: Gate | None,
             pending: list[Any]) -> int:
    """Sends batch[i] and the messages after it that are due too (just it, through the gate, if given), adds their
    results to `pending`, and returns the index of the next message to send."""
    from core.providers.base import OutboundSms

    now, j = time.monotonic(), i + 1
    limit = 1 if gate is not None else getattr(provider, "max_batch", 100)
    while j < len(batch) and j - i < limit and (times is None or times[j] <= now):
        j += 1
    group = [OutboundSms(m.id, m.key, m.phone, m.sender, m.text, m.parts) for m in batch[i:j]]
    if gate is None:
        pending.extend(provider.send(group))
        return j
    token = gate.enter()
    handed_over = time.monotonic()
    try:
        pending.extend(provider.send(group))
    finally:
        gate.leave(token, handed_over)
    return j


class _ResultWriter:
    """Writes send results at most every FLUSH_EVERY_S from a thread, one write at a time, so the lane's
    next send stays on time: on SQLite a write can wait tens of ms for the lock (web app storing reports,
    the other lane), and sends held back that long went out together as a burst (max 1 s window 1.28x the
    rate at 200,000/h). Until a result is written its message stays claimed; a crash leaves it to `recover`.
    """

    def __init__(self, rt: Any, provider_name: str, ids_by_key: dict[str, int]) -> None:
        self.work = (rt, provider_name)
        self.ids_by_key = ids_by_key
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.last = time.monotonic()

    def maybe_start(self, pending: list[Any]) -> None:
        """Hands the results so far to a writer thread when FLUSH_EVERY_S has passed and none is writing."""
        if not pending or time.monotonic() - self.last < dispatch.FLUSH_EVERY_S:
            return
        if self.thread is not None:
            if self.thread.is_alive():
                return  # the results keep collecting for the next write
            self.wait()
        taken = pending[:]
        pending.clear()
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self._write, args=(taken,), name="dispatch-results", daemon=True)
        self.thread.start()

    def _write(self, results: list[Any]) -> None:
        try:
            _flush(*self.work, results, self.ids_by_key)
        except BaseException as exc:  # noqa: BLE001 (handed to the lane in wait)
            self.error = exc

    def wait(self, reraise: bool = True) -> None:
        """Waits for the write under way; raises its error, if any."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        error, self.error = self.error, None
        if error is not None and reraise:
            raise error


def _flush(rt: Any, provider_name: str, pending: list[Any], ids_by_key: dict[str, int], lease: str = "") -> None:
    """Writes the results so far; with a lease's token, also ends the lease, in the same transaction."""
    if pending or lease:
        with rt.sessions() as session, session.begin():
            _write(session, provider_name, pending, ids_by_key, lease)
        pending.clear()


def _stop(rt: Any, provider_name: str, pending: list[Any], ids_by_key: dict[str, int], lease: str, why: str) -> str:
    _flush(rt, provider_name, pending, ids_by_key, lease)  # what was not sent can be leased again
    return why


# --- recovery sweep ----------------------------------------------------------------------------


def recover(rt: Any) -> dict[str, int]:
    """Runs every few seconds: starts due scheduled campaigns, gives back the messages of dead workers,
    and restarts lanes and Processing jobs whose worker died."""
    report = {"started": 0, "released": 0, "lanes": 0, "processing": 0}
    with rt.sessions() as session, session.begin():
        due = session.scalars(select(Campaign).where(Campaign.status == lifecycle.SCHEDULED,
                                                     Campaign.schedule_at <= utcnow())).all()
        for campaign in due:
            campaigns.set_status(campaign, "start")
            dispatch.set_halt(rt.redis, campaign.id, False)
            report["started"] += 1
        live = session.scalars(select(Campaign).where(Campaign.status.in_(
            (lifecycle.STARTED, lifecycle.SENDING, lifecycle.PROCESSING)))).all()
        sending = [c for c in live if c.status != lifecycle.PROCESSING]
        sending_ids = [c.id for c in sending]
        stale = dispatch.stale_leases(session, sending_ids) if sending else []
        claimed = dispatch.stale_claims(session, sending_ids) if sending else []  # by a worker of an earlier version
        for campaign in sending:
            leases = [(token, ids) for token, cid, ids in stale if cid == campaign.id]
            old = [mid for mid, cid in claimed if cid == campaign.id]
            if leases or old:
                safe = _resend_safe(account_for(session, campaign))
                report["released"] += sum(dispatch.give_back_lease(session, token, ids, safe) for token, ids in leases)
                dispatch.give_back(session, old, safe)
                report["released"] += len(old)
        processing = [(c.id, len(c.prepare_plan or []) + 1) for c in live if c.status == lifecycle.PROCESSING]
        lanes = [c.id for c in sending]
    for campaign_id in lanes:
        for lane in range(rt.settings.dispatch_lanes):
            if not rt.redis.exists(dispatch.LANE_KEY.format(campaign_id, lane)):
                queues.enqueue_lane(rt.redis, campaign_id, lane, 0)
                report["lanes"] += 1
    for campaign_id, parts in processing:
        if queues.enqueue_processing(rt.redis, campaign_id, only_if_idle=True, parts=parts):
            report["processing"] += 1
    return report


def _resend_safe(account: ProviderAccount | None) -> bool:
    from core import providers

    return account is not None and bool(getattr(providers.get(account.provider), "idempotent", False))
