"""Who may get a transactional message: contact status, STOPALL, category opt-outs and the frequency policy.

A category listed in the workspace setting `transactional_categories` (order updates, one-time codes) is exempt
from marketing opt-outs and from the frequency policy, never from STOPALL (an opt-out of category "all") or a
blocked, archived or deleted contact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.orm import Session

from core.models import Campaign, Consent, Contact, Message, Workspace
from core.models.base import utcnow

STOPALL = "all"  # the consent category a STOPALL reply (or an admin) opts out of
UNREACHABLE = ("blocked", "archived", "deleted")


_CONSENT = Consent.__table__.c
_CONSENTS_OF = select(_CONSENT.contact_id, _CONSENT.category, _CONSENT.opted_in).where(
    _CONSENT.contact_id.in_(bindparam("ids", expanding=True)))  # built once: check() runs on every API send


def transactional_categories(ws: Workspace) -> frozenset[str]:
    return frozenset(str(c) for c in ((ws.settings or {}).get("transactional_categories") or []))


def check(session: Session, ws: Workspace, pairs: Sequence[tuple[Contact, str | None]]) -> list[str | None]:
    """For each (contact, consent category): None when the message may go, else the reason it may not. A
    contact is a Contact or a row with its `id` and `status`."""
    if not pairs:
        return []
    ids = sorted({contact.id for contact, _ in pairs})
    consents: dict[tuple[int, str], bool] = {}
    for i in range(0, len(ids), 500):
        for cid, category, opted in session.connection().execute(_CONSENTS_OF, {"ids": ids[i:i + 500]}):
            consents[(cid, category)] = opted
    settings = ws.settings or {}
    exempt = transactional_categories(ws)
    policy = settings.get("frequency") or {}
    counts = _recent(session, ws.id, ids, exempt, int(policy.get("days", 7))) if policy.get("max") else {}
    out: list[str | None] = []
    for contact, category in pairs:
        out.append(_verdict(contact, category, consents, exempt, settings, policy, counts))
    return out


def _verdict(contact: Contact, category: str | None, consents: dict[tuple[int, str], bool], exempt: frozenset[str],
             settings: dict[str, Any], policy: dict[str, Any], counts: dict[int, dict[str | None, int]]) -> str | None:
    if contact.status in UNREACHABLE:
        return f"contact is {contact.status}"
    if consents.get((contact.id, STOPALL)) is False:
        return "opted out of all messages (STOPALL)"
    if category in exempt:
        return None
    if category and consents.get((contact.id, category)) is False:
        return f"opted out of {category}"
    if category and settings.get("require_opt_in") and consents.get((contact.id, category)) is not True:
        return f"no opt-in for {category}"
    if policy.get("max"):
        seen = counts.get(contact.id, {})
        n = sum(seen.values()) if policy.get("all_categories") else seen.get(category, 0)
        if n >= int(policy["max"]):
            return f"frequency policy: {n} messages in {int(policy.get('days', 7))} days (max {policy['max']})"
    return None


def _recent(session: Session, workspace_id: int, ids: Sequence[int], exempt: frozenset[str],
            days: int) -> dict[int, dict[str | None, int]]:
    """Per contact and category: campaigns plus non-transactional API messages within `days`."""
    category = func.coalesce(Message.consent_category, Campaign.consent_category)
    one_per_campaign = func.coalesce(Message.campaign_id, literal(0) - Message.id)
    query = (select(Message.contact_id, category, func.count(func.distinct(one_per_campaign)))
             .outerjoin(Campaign, Campaign.id == Message.campaign_id)
             .where(Message.workspace_id == workspace_id, Message.contact_id.in_(list(ids)),
                    Message.created_at >= utcnow() - timedelta(days=days), Message.status != "enqueue_failed")
             .group_by(Message.contact_id, category))
    if exempt:
        query = query.where(func.coalesce(Message.consent_category, "").not_in(sorted(exempt)))
    out: dict[int, dict[str | None, int]] = defaultdict(dict)
    for contact_id, cat, n in session.execute(query):
        out[contact_id][cat] = int(n)
    return out
