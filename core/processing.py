"""The Processing job: content policy, audience frozen, messages prepared, then Ready → Scheduled or Started.

A large audience is prepared in parts (contact id ranges of equal size, fixed when the audience is frozen) by
RQ jobs that any worker on any machine may run side by side: the Processing job runs part 0 itself and queues
the others. Each part is resumable on its own (a re-run continues after its highest prepared contact). The
part that completes the set, as counted in Redis, finishes the campaign; a re-run of the job after a crash
re-queues the parts that are not running, and a part that finds every part done finishes it too.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from core import audience, campaigns, db, dispatch, lifecycle, prepare, queues
from core.errors import SmsConnectError
from core.models import Campaign, ContentRule, Message
from core.models.base import as_utc, utcnow

log = logging.getLogger(__name__)

DONE_KEY = "smsconnect:campaign:{}:prepared"  # Redis set of the parts that prepared all their recipients
DONE_TTL_S = 7 * 86400
ANALYZE_FROM = 10_000  # prepared messages from which the table statistics are refreshed at once (PostgreSQL)


def content_problem(session: Any, campaign: Campaign) -> str | None:
    found = list(session.scalars(select(ContentRule).where(ContentRule.workspace_id == campaign.workspace_id)))
    if not found:
        return None
    from core import rules

    texts = {f"variant {v.name} text": v.text for v in campaign.variants}
    for v in campaign.variants:
        texts.update({f"variant {v.name} ({lang}) text": t for lang, t in (v.languages or {}).items()})
    match = rules.check_content(found, texts)
    return match.reason if match else None


def parts_for(settings: Any, recipients: int) -> int:
    """How many parts prepare an audience: one per `prepare_part_min` recipients, at most `prepare_parts`."""
    return max(1, min(settings.prepare_parts, recipients // max(1, settings.prepare_part_min)))


def process(rt: Any, campaign_id: int) -> None:
    """The queued job: freezes the audience once, plans the parts, queues parts 1.. and runs part 0.
    Safe to re-run after a crash: prepared messages are kept and the rest continue."""
    with rt.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != lifecycle.PROCESSING:
            return
        if campaign.prepare_plan is None:
            problem = content_problem(session, campaign)
            if problem:
                campaigns.set_status(campaign, "reject", problem)
                return
            frozen, included = audience.freeze(session, campaign)
            campaign.excluded = frozen.excluded
            parts = parts_for(rt.settings, frozen.included)
            campaign.prepare_plan = audience.part_starts(session, included, frozen.included, parts)
        plan = list(campaign.prepare_plan)
    for part in range(1, len(plan) + 1):
        queues.enqueue_prepare_part(rt.redis, campaign_id, part)
    prepare_part(rt, campaign_id, 0)


def prepare_part(rt: Any, campaign_id: int, part: int) -> None:
    """Prepares the recipients of one part; the part that completes the set finishes the campaign."""
    from core.runner import account_for

    with rt.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or campaign.status != lifecycle.PROCESSING or campaign.prepare_plan is None:
            return
        starts = [0, *campaign.prepare_plan, None]
        after = max(0, starts[part] - 1)  # the part's recipients have after < id < before
        before = starts[part + 1]
        included = audience.included_clause(session, campaign)
        account = account_for(session, campaign)
        provider = account.provider if account else None
        parts = len(starts) - 1
    try:
        complete = prepare.prepare_batches(rt, campaign_id, included, provider, after, before)
    except SmsConnectError as exc:  # e.g. every short-link domain is at its limit
        with rt.sessions() as session, session.begin():
            dispatch.suspend(session, session.get(Campaign, campaign_id), str(exc), rt.redis)
        return
    if not complete:
        return  # paused or aborted meanwhile: the part is not done
    key = DONE_KEY.format(campaign_id)
    with rt.redis.pipeline() as pipe:  # MULTI: each part sees the count including itself, exactly one sees all
        _, done, _ = pipe.sadd(key, part).scard(key).expire(key, DONE_TTL_S).execute()
    if done >= parts:
        finish(rt, campaign_id)


def finish(rt: Any, campaign_id: int) -> None:
    """Every part is prepared: totals stored, then Ready → Scheduled, or Started with its lanes queued."""
    with rt.sessions() as session, session.begin():  # before the campaign row is locked: ANALYZE reads a sample
        many = select(Message.id).where(Message.campaign_id == campaign_id).limit(ANALYZE_FROM).subquery()
        postgres = db.is_postgres(session.get_bind())  # SQLite plans well without statistics
        if postgres and session.scalar(select(func.count()).select_from(many)) >= ANALYZE_FROM:
            db.refresh_statistics(session, "messages")
    with rt.sessions() as session, session.begin():
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.status != lifecycle.PROCESSING:
            return
        count, cost, currency = session.execute(
            select(func.count(), func.coalesce(func.sum(Message.cost), 0), func.max(Message.currency))
            .where(Message.campaign_id == campaign.id)).one()
        campaign.recipients = int(count)
        campaign.estimated_cost = Decimal(str(cost))
        campaign.currency = currency
        campaign.prepared_at = utcnow()
        campaigns.set_status(campaign, "prepared")
        schedule_or_start(rt, campaign)
    rt.redis.delete(DONE_KEY.format(campaign_id))


def schedule_or_start(rt: Any, campaign: Campaign) -> None:
    from core.runner import start_lanes

    due = campaign.schedule_at is None or as_utc(campaign.schedule_at) <= utcnow()
    campaigns.set_status(campaign, "start" if due else "schedule")
    if due:
        dispatch.set_halt(rt.redis, campaign.id, False)
        start_lanes(rt, campaign.id)
