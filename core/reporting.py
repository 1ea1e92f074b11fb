"""Campaign reports: counts per status and variant, exclusions, cost, clicks and CTR."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Campaign, Click, Message

HANDED_OVER = ("sent", "delivered", "undelivered", "expired")  # plus `error` after the provider took it
FAILED = ("undelivered", "expired", "error")


def _by_status(session: Session, campaign_id: int) -> dict[tuple[int | None, str], dict[str, Any]]:
    rows = session.execute(
        select(Message.variant_id, Message.status, func.count(), func.coalesce(func.sum(Message.parts), 0),
               func.coalesce(func.sum(Message.cost), 0), func.count(Message.sent_at))
        .where(Message.campaign_id == campaign_id).group_by(Message.variant_id, Message.status)
    ).all()
    return {(vid, status): {"count": n, "parts": int(parts), "cost": Decimal(str(cost)), "handed": handed}
            for vid, status, n, parts, cost, handed in rows}


def _figures(groups: list[dict[str, Any]], statuses: dict[str, int], clicked: int) -> dict[str, Any]:
    sent = sum(g["handed"] for g in groups)
    delivered = statuses.get("delivered", 0)
    failed = sum(statuses.get(s, 0) for s in FAILED)
    cost = sum((g["cost"] for g in groups if g["handed"]), Decimal(0))
    return {
        "recipients": sum(statuses.values()), "waiting": statuses.get("waiting", 0), "sent": sent,
        "delivered": delivered, "failed": failed, "enqueue_failed": statuses.get("enqueue_failed", 0),
        "statuses": statuses, "clicked": clicked,
        "ctr": round(clicked / delivered, 4) if delivered else 0.0,
        "parts": sum(g["parts"] for g in groups if g["handed"]), "cost": float(cost),
    }


def _clicked(session: Session, campaign_id: int) -> dict[int | None, int]:
    rows = session.execute(
        select(Click.variant_id, func.count(func.distinct(Click.contact_id)))
        .where(Click.campaign_id == campaign_id, Click.is_bot.is_(False)).group_by(Click.variant_id)
    ).all()
    return dict(rows)


def campaign_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What the report page shows; CTR = contacts who clicked (bots excluded) / messages delivered."""
    table = _by_status(session, campaign.id)
    clicks = _clicked(session, campaign.id)
    statuses: dict[str, int] = {}
    for (_, status), group in table.items():
        statuses[status] = statuses.get(status, 0) + group["count"]
    report = _figures(list(table.values()), statuses, sum(clicks.values()))
    variants = []
    for variant in campaign.variants:
        mine = {s: g for (vid, s), g in table.items() if vid == variant.id}
        figures = _figures(list(mine.values()), {s: g["count"] for s, g in mine.items()}, clicks.get(variant.id, 0))
        variants.append({"id": variant.id, "name": variant.name, "ratio": variant.ratio, **figures})
    report.update(
        campaign_id=campaign.id, status=campaign.status, status_reason=campaign.status_reason,
        excluded=campaign.excluded or {}, excluded_total=sum((campaign.excluded or {}).values()),
        estimated_cost=float(campaign.estimated_cost or 0), currency=campaign.currency, variants=variants,
        bot_hits=session.scalar(select(func.count()).where(Click.campaign_id == campaign.id,
                                                           Click.is_bot.is_(True))) or 0,
    )
    return report
