"""Freezing a campaign's audience: groups, segments and ids resolved, exclusions counted per reason."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session

from core import db, segments
from core.models import Campaign, Consent, Contact, GroupMember, Message, Workspace
from core.models.base import utcnow
from core.models.contact import STATUSES

BATCH = 5000  # recipients per prepared batch (and per committed transaction of messages)
STATUS_RULES = ("deleted", "blocked", "archived")  # statuses excluded by the first rules, in that order
# The one status the status rules leave ("active"); a new contact status makes this fail at import, on purpose.
(SENDABLE,) = (s for s in STATUSES if s not in STATUS_RULES)


@dataclass(frozen=True)
class Recipient:
    contact_id: int
    phone: str
    attributes: dict[str, Any]


@dataclass
class Audience:
    included: int = 0
    excluded: dict[str, int] = field(default_factory=dict)


def _target(session: Session, campaign: Campaign) -> ColumnElement[bool]:
    """Contacts named by any part of the audience (a contact in two parts counts once)."""
    audience, ws_id = campaign.audience or {}, campaign.workspace_id
    parts: list[ColumnElement[bool]] = []
    if audience.get("groups"):
        parts.append(Contact.id.in_(select(GroupMember.contact_id).where(GroupMember.group_id.in_(audience["groups"]))))
    for segment_id in audience.get("segments", []):
        parts.append(segments.compile_filter(segments.get_segment(session, ws_id, segment_id).filter, ws_id))
    if audience.get("contact_ids"):
        parts.append(db.in_values(session, Contact.id, audience["contact_ids"]))
    if audience.get("filter") is not None:
        parts.append(segments.compile_filter(audience["filter"], ws_id))
    return and_(Contact.workspace_id == ws_id, or_(*parts) if parts else false())


def _opted_out(category: str | None) -> ColumnElement[bool]:
    if not category:
        return false()
    return exists(select(Consent.contact_id).where(
        Consent.contact_id == Contact.id, Consent.category == category, Consent.opted_in.is_(False)))


def _no_opt_in(category: str | None) -> ColumnElement[bool]:
    if not category:
        return false()
    return not_(exists(select(Consent.contact_id).where(
        Consent.contact_id == Contact.id, Consent.category == category, Consent.opted_in.is_(True))))


def _over_frequency(campaign: Campaign, policy: dict[str, Any] | None) -> ColumnElement[bool]:
    """At most `max` campaigns per contact within `days` (per workspace; per category unless `all_categories`)."""
    if not policy or not policy.get("max"):
        return false()
    since = utcnow() - timedelta(days=int(policy.get("days", 7)))
    recent = select(Message.contact_id).join(Campaign, Campaign.id == Message.campaign_id).where(
        Message.workspace_id == campaign.workspace_id, Message.created_at >= since,
        Message.campaign_id != campaign.id, Message.status != "enqueue_failed",
    )
    if not policy.get("all_categories"):
        recent = recent.where(Campaign.consent_category == campaign.consent_category)
    busy = recent.group_by(Message.contact_id).having(func.count(func.distinct(Message.campaign_id)) >= policy["max"])
    return Contact.id.in_(busy)


def exclusion_rules(session: Session, campaign: Campaign) -> list[tuple[str, ColumnElement[bool]]]:
    """(reason, condition) in order of precedence: a contact is counted under its first matching reason."""
    ws = session.get(Workspace, campaign.workspace_id)
    settings = ws.settings if ws else {}
    rules: list[tuple[str, ColumnElement[bool]]] = [(status, Contact.status == status) for status in STATUS_RULES]
    rules += [
        ("invalid_number", not_(Contact.phone.like("+%"))),
        ("opted_out", _opted_out(campaign.consent_category)),
    ]
    if settings.get("require_opt_in"):
        rules.append(("no_opt_in", _no_opt_in(campaign.consent_category)))
    rules.append(("frequency", _over_frequency(campaign, settings.get("frequency"))))
    return rules


def freeze(session: Session, campaign: Campaign) -> tuple[Audience, ColumnElement[bool]]:
    """Counts the audience and its exclusions; returns them with the WHERE clause of the included contacts."""
    target = _target(session, campaign)
    result = Audience()
    excluded_so_far: list[ColumnElement[bool]] = []
    for reason, rule in exclusion_rules(session, campaign):
        condition = and_(target, rule, *[not_(e) for e in excluded_so_far])
        n = session.scalar(select(func.count()).select_from(Contact).where(condition)) or 0
        if n:
            result.excluded[reason] = n
        excluded_so_far.append(rule)
    duplicates = _duplicates(session, campaign)
    if duplicates:
        result.excluded["duplicate"] = duplicates
    included = included_clause(session, campaign)
    result.included = session.scalar(select(func.count()).select_from(Contact).where(included)) or 0
    return result, included


def included_clause(session: Session, campaign: Campaign) -> ColumnElement[bool]:
    """The WHERE clause of the contacts the campaign sends to (no counting: parts of a Processing job that run
    on other workers rebuild it from the campaign)."""
    rules = [rule for _, rule in exclusion_rules(session, campaign)]
    # `status = 'active'` says again what the status rules leave. It lets the (workspace_id, status) index,
    # whose entries end in the id, serve `recipients`' id-ordered pages; without it SQLite reads and sorts the
    # whole workspace for every page of 5,000 (quadratic: 200 pages x 1M rows for 1M recipients).
    return and_(_target(session, campaign), Contact.status == SENDABLE, *[not_(rule) for rule in rules])


def part_starts(session: Session, included: ColumnElement[bool], count: int, parts: int) -> list[int]:
    """Contact ids where parts 1..parts-1 of an id-ordered audience of `count` begin (equal sizes)."""
    starts = []
    for k in range(1, parts):
        first = session.scalar(select(Contact.id).where(included).order_by(Contact.id)
                               .offset(k * count // parts).limit(1))
        if first is not None and (not starts or first > starts[-1]):
            starts.append(int(first))
    return starts


def _duplicates(session: Session, campaign: Campaign) -> int:
    """Contacts named by more than one part of the audience (removed so each gets one message)."""
    audience, ws_id = campaign.audience or {}, campaign.workspace_id
    named = 0
    if audience.get("groups"):
        named += session.scalar(select(func.count()).select_from(Contact).where(
            Contact.workspace_id == ws_id, Contact.id.in_(select(GroupMember.contact_id).where(
                GroupMember.group_id.in_(audience["groups"]))))) or 0
    for segment_id in audience.get("segments", []):
        tree = segments.get_segment(session, ws_id, segment_id).filter
        named += segments.count_matching(session, ws_id, tree)
    if audience.get("contact_ids"):
        named += session.scalar(select(func.count()).select_from(Contact).where(
            Contact.workspace_id == ws_id, db.in_values(session, Contact.id, audience["contact_ids"]))) or 0
    if audience.get("filter") is not None:
        named += segments.count_matching(session, ws_id, audience["filter"])
    distinct = session.scalar(select(func.count()).select_from(Contact).where(_target(session, campaign))) or 0
    return max(0, named - distinct)


def recipients(session: Session, included: ColumnElement[bool], after_id: int = 0,
               before_id: int | None = None) -> Iterator[list[Recipient]]:
    """The included contacts with after_id < id < before_id in id order, 5,000 at a time (keyset paging:
    constant memory)."""
    last = after_id
    conn = session.connection()  # Core rows: the ORM's result machinery costs ~10 µs a row here
    upper = [Contact.id < before_id] if before_id is not None else []
    while True:
        rows = conn.execute(
            select(Contact.id, Contact.phone, Contact.attributes).where(included, Contact.id > last, *upper)
            .order_by(Contact.id).limit(BATCH)
        ).all()
        if not rows:
            return
        yield [Recipient(cid, phone, attrs or {}) for cid, phone, attrs in rows]
        last = rows[-1][0]
