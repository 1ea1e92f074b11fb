"""Preparing a campaign's messages: render, shorten links, analyse, price, and persist in bulk."""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import bulk, encoding, render
from core.audience import Recipient, recipients
from core.models import Campaign, CampaignVariant, Message
from core.models.base import utcnow

log = logging.getLogger(__name__)


class VariantPicker:
    """Smooth weighted round robin: after n picks each variant has n × ratio / 100 recipients, ± 1."""

    def __init__(self, variants: Sequence[CampaignVariant]) -> None:
        self.variants = [v for v in variants if v.ratio > 0]
        self.ratios = [v.ratio for v in self.variants]  # read once: an ORM attribute costs ~1 µs a read
        self.total = sum(self.ratios)
        self.current = [0] * len(self.variants)

    def next(self) -> CampaignVariant:
        current = self.current
        best = 0
        for i, ratio in enumerate(self.ratios):
            current[i] += ratio
            if current[i] > current[best]:
                best = i
        current[best] -= self.total
        return self.variants[best]

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.next()


@dataclass(frozen=True)
class CompiledVariant:
    variant: CampaignVariant
    default: render.Template
    languages: dict[str, render.Template]

    def template_for(self, language: object) -> render.Template:
        if not self.languages or not isinstance(language, str) or not language:
            return self.default
        fallback = self.variant.fallback_language or "__default__"
        choices = {**self.languages, fallback: self.default}
        try:
            return render.pick_variant(choices, language, fallback)
        except render.RenderError:
            return self.default


def compile_variants(variants: Sequence[CampaignVariant]) -> dict[int, CompiledVariant]:
    return {
        v.id: CompiledVariant(v, render.compile_template(v.text),
                              {lang: render.compile_template(t) for lang, t in (v.languages or {}).items()})
        for v in variants
    }


@lru_cache(maxsize=4096)
def _zone_for_prefix(prefix: str) -> str | None:
    try:
        number = phonenumbers.parse(prefix + "0" * (12 - len(prefix)), None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezones.time_zones_for_number(number) if z != "Etc/Unknown"]
    return zones[0] if zones else None


def zone_of(phone: str) -> ZoneInfo | None:
    """The recipient's time zone from the number (first 5 digits decide; cached)."""
    name = _zone_for_prefix(phone[:6])
    return ZoneInfo(name) if name else None


def send_after(phone: str, window: dict[str, str] | None, start: datetime) -> datetime | None:
    """The first moment from `start` that falls inside the window in the recipient's local time."""
    if not window:
        return None
    zone = zone_of(phone)
    if zone is None:
        return None
    local = start.astimezone(zone)
    begin, end = dtime.fromisoformat(window["start"]), dtime.fromisoformat(window["end"])
    if begin <= local.time() < end:
        return None
    day = local.date() if local.time() < begin else local.date() + timedelta(days=1)
    return datetime.combine(day, begin, tzinfo=zone).astimezone(UTC)


@dataclass
class Prepared:
    rows: list[dict[str, Any]]
    failed: int = 0
    cost: Decimal = Decimal(0)


def build_messages(
    campaign: Campaign, compiled: dict[int, CompiledVariant], picker: VariantPicker, batch: Sequence[Recipient],
    extras: Any, price_for: Any, start: datetime,
) -> Prepared:
    """Renders one batch of recipients into message rows (texts not yet shortened)."""
    out = Prepared(rows=[])
    wants_optout = any("optout_url" in c.default.variables for c in compiled.values())
    # Campaign fields are read once per batch: this loop runs a million times for a 1M audience.
    ws_id, campaign_id, sender, window = campaign.workspace_id, campaign.id, campaign.sender_id, campaign.send_window
    key = f"c{campaign_id}-"
    pick, append, texts = picker.next, out.rows.append, RenderMemo()
    for recipient in batch:
        variant = compiled[pick().id]
        attributes, phone = recipient.attributes, recipient.phone
        template = variant.template_for(attributes.get("language"))
        if wants_optout or "phone" in template.variables:
            variables = {**attributes, "phone": phone}
            if wants_optout:
                variables["optout_url"] = extras(recipient)
        else:
            variables = attributes  # render only reads the template's own variables
        row: dict[str, Any] = {
            "workspace_id": ws_id, "campaign_id": campaign_id, "variant_id": variant.variant.id,
            "contact_id": recipient.contact_id, "phone": phone, "sender": sender,
            "idempotency_key": f"{key}{recipient.contact_id}", "status": "waiting", "reason": None,
            "send_after": send_after(phone, window, start) if window else None,
            "price_per_part": None, "currency": None, "cost": None,
        }
        try:
            row["text"] = texts.render(template, variables)
        except render.RenderError as exc:
            row.update(text="", status="enqueue_failed", reason=str(exc))
        append(row)
    return out


class RenderMemo:
    """Renders through a bounded memo keyed by the values a template reads, so recipients who share a first
    name and a city share one Jinja render (~10 µs each; most audiences repeat such values a lot).

    Not memoised: templates that read a per-recipient value (`phone`, `optout_url`) and templates that name
    `random`, Jinja's one non-deterministic filter.
    """

    LIMIT = 20_000  # entries (texts of a few hundred bytes); cleared when full
    UNIQUE = frozenset({"phone", "optout_url"})

    def __init__(self) -> None:
        self.memo: dict[Any, str] = {}
        self.names: dict[int, tuple[str, ...]] = {}  # id(template) → its variables; () = never memoised

    def render(self, template: render.Template, variables: Any) -> str:
        names = self.names.get(id(template))
        if names is None:
            pure = not template.is_plain and "random" not in template.source and not template.variables & self.UNIQUE
            names = self.names[id(template)] = tuple(sorted(template.variables)) if pure else ()
        if not names:
            return template.render(variables)
        # The type is part of the key: 1, 1.0 and True are equal as keys but print differently.
        key = (id(template), *[(type(v := variables.get(name)), v) for name in names])
        try:
            text = self.memo.get(key)
        except TypeError:  # an unhashable value (a list or an object)
            return template.render(variables)
        if text is None:
            text = template.render(variables)
            if len(self.memo) >= self.LIMIT:
                self.memo.clear()
            self.memo[key] = text
        return text


def finish_rows(campaign: Campaign, prepared: Prepared, price_for: Any) -> None:
    """Analyses the final (shortened) texts, enforces max_parts and prices each message."""
    now = utcnow()
    max_parts = campaign.max_parts
    costs: dict[tuple[Decimal, int], Decimal] = {}  # (price, parts) → cost: a handful of distinct pairs
    analyze, places = encoding.analyze, Decimal("0.00001")
    for row in prepared.rows:
        row["created_at"] = row["status_at"] = now
        if row["status"] == "enqueue_failed":
            row["encoding"], row["parts"] = "GSM-7", 0
            prepared.failed += 1
            continue
        analysis = analyze(row["text"])
        parts = analysis.parts
        row["encoding"], row["parts"] = analysis.encoding, parts
        if parts > max_parts:
            row.update(status="enqueue_failed",
                       reason=f"message is {parts} parts ({analysis.encoding}), over max_parts {max_parts}")
            prepared.failed += 1
            continue
        price = price_for(row["phone"])
        if price is not None:
            row["price_per_part"], row["currency"] = price
            cost = costs.get((price[0], parts))
            if cost is None:
                cost = costs[(price[0], parts)] = (price[0] * parts).quantize(places)
            row["cost"] = cost
            prepared.cost += cost


# Every column a prepared row may carry; the others keep their defaults (all NULL).
_COLUMNS = ("workspace_id", "campaign_id", "variant_id", "contact_id", "phone", "sender", "idempotency_key",
            "status", "reason", "send_after", "text", "encoding", "parts", "price_per_part", "currency", "cost",
            "created_at", "status_at")


def insert_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk insert straight to the driver (core/bulk.py; the ORM's bulk insert spent ~25 µs a row on per-row
    bookkeeping); a row whose idempotency key exists (a re-run after a crash) is skipped."""
    if not rows:
        return
    whole = operator.itemgetter(*_COLUMNS)
    values = []
    for row in rows:
        try:
            values.append(whole(row))  # rows from build_messages + finish_rows carry every column
        except KeyError:
            values.append(tuple(row.get(name) for name in _COLUMNS))
    bulk.insert_rows(session, Message.__table__, _COLUMNS, values, skip_existing="idempotency_key")


def resume_point(session: Session, campaign_id: int, after: int = 0, before: int | None = None) -> tuple[int, int]:
    """(messages already prepared, highest contact id among them) for contacts after < id < before: a re-run
    continues after it."""
    query = select(func.count(), func.max(Message.contact_id)).where(Message.campaign_id == campaign_id,
                                                                     Message.contact_id > after)
    if before is not None:
        query = query.where(Message.contact_id < before)
    count, last = session.execute(query).one()
    return int(count or 0), int(last or after)


def _price_lookup(session: Session, campaign: Campaign, provider: str | None) -> Any:
    if provider is None:
        return lambda phone: None
    from core.pricing import PriceBook

    return PriceBook.load(session, campaign.workspace_id, provider).price_for


def _optout_maker(settings: Any, campaign: Campaign) -> Any:
    from core.optout import optout_url

    category = campaign.consent_category or "marketing"
    return lambda r: optout_url(settings, campaign.workspace_id, r.contact_id, category)


def _shorten(session: Session, rt: Any, campaign: Campaign, rows: list[dict[str, Any]]) -> None:
    """Replaces every URL of the batch's texts by per-recipient short links (one bulk call)."""
    from core import links
    from core.models import Workspace

    todo = [row for row in rows if row["status"] == "waiting" and "://" in row["text"]]
    if not todo or not campaign.settings.get("shorten_links", True):
        return
    workspace = session.get(Workspace, campaign.workspace_id)
    assert workspace is not None
    options = links.LinkOptions(
        workspace_id=campaign.workspace_id, expires_at=links.default_expiry(workspace),
        suffix=campaign.settings.get("link_suffix"), identity_mode=campaign.settings.get("identity_mode", "first"),
        campaign_id=campaign.id, skip_prefixes=(f"{rt.settings.base_url}/u/",),
    )
    items = [(row["text"], links.Recipient(row["contact_id"], None, row["variant_id"])) for row in todo]
    for row, text in zip(todo, links.shorten_batch(session, rt.redis, options, items, rt.settings.base_url),
                         strict=True):
        row["text"] = text


def prepare_batches(rt: Any, campaign_id: int, included: Any, provider: str | None, after: int = 0,
                    before: int | None = None) -> bool:
    """Prepares every remaining recipient with after < contact id < before, in committed batches.

    Returns False when it stopped early because the campaign left Processing (paused or aborted meanwhile).
    """
    with rt.sessions() as reader:
        campaign = reader.get(Campaign, campaign_id)
        compiled = compile_variants(campaign.variants)
        picker = VariantPicker(campaign.variants)
        done, last_id = resume_point(reader, campaign_id, after, before)
        picker.skip(done)
        price_for = _price_lookup(reader, campaign, provider)
        optout = _optout_maker(rt.settings, campaign)
        start = campaign.schedule_at or utcnow()
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        for batch in recipients(reader, included, last_id, before):
            prepared = build_messages(campaign, compiled, picker, batch, optout, price_for, start)
            with rt.sessions() as session, session.begin():
                live = session.get(Campaign, campaign_id)
                if live is None or live.status not in ("processing", "sending", "started"):
                    return False
                _shorten(session, rt, campaign, prepared.rows)
                finish_rows(campaign, prepared, price_for)
                insert_messages(session, prepared.rows)
    return True


def retune(rt: Any, campaign_id: int) -> int:
    """After a ratio change: re-assigns the variants of messages not yet sent (and not in a lane's batch) to the new
    ratios, re-rendering those that change. Returns how many changed."""
    from sqlalchemy import bindparam, update

    from core import db, dispatch
    from core.models import Contact

    changed = 0
    with rt.sessions() as reader:
        campaign = reader.get(Campaign, campaign_id)
        compiled = compile_variants(campaign.variants)
        picker = VariantPicker(campaign.variants)
        price_for = _price_lookup(reader, campaign, _provider_name(reader, campaign))
        optout = _optout_maker(rt.settings, campaign)
        last = 0
        while True:
            rows = reader.execute(
                select(Message.id, Message.variant_id, Contact.id, Contact.phone, Contact.attributes)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Message.campaign_id == campaign_id, Message.status == "waiting", Message.claim.is_(None),
                       Message.id > last).order_by(Message.id).limit(2000)).all()
            if not rows:
                return changed
            last = rows[-1][0]
            moved = [(mid, Recipient(cid, phone, attrs or {}), picker.next()) for mid, vid, cid, phone, attrs in rows]
            moved = [(mid, r, v) for (mid, r, v), row in zip(moved, rows, strict=True) if v.id != row[1]]
            if not moved:
                continue
            forced = _FixedPicker([v for _, _, v in moved])
            prepared = build_messages(campaign, compiled, forced, [r for _, r, _ in moved], optout, price_for,
                                      utcnow())
            with rt.sessions() as session, session.begin():
                _shorten(session, rt, campaign, prepared.rows)
                finish_rows(campaign, prepared, price_for)
                fields = ("variant_id", "text", "encoding", "parts", "status", "reason", "cost", "price_per_part")
                table = Message.__table__
                db.lock_row(session, Campaign.__table__, campaign_id)  # no lane leases a batch meanwhile
                sending = dispatch.leased(session, campaign_id, [mid for mid, _, _ in moved])
                updates = [{"mid": mid, **{f"v_{f}": row.get(f) for f in fields}}
                           for (mid, _, _), row in zip(moved, prepared.rows, strict=True) if mid not in sending]
                if updates:
                    session.execute(
                        update(table).where(table.c.id == bindparam("mid"), table.c.claim.is_(None),
                                            table.c.status == "waiting")
                        .values({f: bindparam(f"v_{f}") for f in fields}), updates)
            changed += len(updates)


class _FixedPicker(VariantPicker):
    def __init__(self, chosen: list[CampaignVariant]) -> None:
        self.chosen = iter(chosen)

    def next(self) -> CampaignVariant:
        return next(self.chosen)


def _provider_name(session: Session, campaign: Campaign) -> str | None:
    from core.runner import account_for

    account = account_for(session, campaign)
    return account.provider if account else None
