"""What users do to campaigns: submit, pause, resume, abort, delete, and live tuning."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import audience, campaigns, dispatch, lifecycle, queues
from core.errors import InvalidInput
from core.models import Campaign
from core.models.base import as_utc, utcnow


def submit(rt: Any, session: Session, campaign: Campaign) -> Campaign:
    """Draft → Processing: checks the steps and that someone can receive it, then queues the preparation."""
    lifecycle.next_status(campaign.status, "submit")
    campaigns.ensure_submittable(campaign)
    frozen, _ = audience.freeze(session, campaign)
    if frozen.included == 0:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(frozen.excluded.items())) or "it names no contacts"
        raise InvalidInput("audience", f"is empty: nobody can receive this campaign ({why})", frozen.excluded)
    campaigns.set_status(campaign, "submit")
    campaign.excluded = frozen.excluded
    dispatch.set_halt(rt.redis, campaign.id, False)
    session.commit()  # the job must see Processing
    queues.enqueue_processing(rt.redis, campaign.id)
    return campaign


def pause(rt: Any, session: Session, campaign: Campaign) -> Campaign:
    """Stops sending within one batch; messages not yet sent stay waiting for resume."""
    campaigns.set_status(campaign, "pause")
    dispatch.set_halt(rt.redis, campaign.id, True)
    return campaign


def resume(rt: Any, session: Session, campaign: Campaign) -> Campaign:
    """Paused or Suspended → wherever the work stands: preparing, scheduled, or sending."""
    if campaign.prepared_at is None:
        target = lifecycle.PROCESSING
    elif campaign.schedule_at is not None and as_utc(campaign.schedule_at) > utcnow():
        target = lifecycle.SCHEDULED
    else:
        target = lifecycle.STARTED
    campaigns.set_status(campaign, "resume", resume_to=target)
    dispatch.set_halt(rt.redis, campaign.id, False)
    session.commit()
    if target == lifecycle.PROCESSING:
        queues.enqueue_processing(rt.redis, campaign.id)
    elif target == lifecycle.STARTED:
        for lane in range(rt.settings.dispatch_lanes):
            queues.enqueue_lane(rt.redis, campaign.id, lane)
    return campaign


def abort(rt: Any, session: Session, campaign: Campaign) -> Campaign:
    campaigns.set_status(campaign, "abort", "aborted by a user")
    dispatch.set_halt(rt.redis, campaign.id, True)
    return campaign


def delete(rt: Any, session: Session, campaign: Campaign) -> None:
    """Any status; a campaign under way is aborted first so no lane sends another message."""
    if campaign.status not in lifecycle.ENDED:
        abort(rt, session, campaign)
        session.flush()
    session.delete(campaign)


def tune(rt: Any, session: Session, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    """Throttle and variant ratios may change at any time; a new throttle applies to the next batch."""
    campaigns.update_campaign(session, campaign, data)
    if ("ratios" in data or "variants" in data) and campaign.prepared_at is not None:
        session.commit()
        queues.queue(rt.redis, queues.SENDS).enqueue("core.jobs.retune_campaign", campaign.id)
    return campaign
