"""Accepting transactional messages: one or up to 1,000 from the API, the CLI or a CRM plugin, checked,
rendered, priced and stored in one transaction, then handed to their own dispatch queue.

Per item the answer is `accepted`, or `enqueue_failed` with the reason. An item that is not valid input
(unknown template, unparseable number, `send_at` in the past...) is stored nowhere and names its `field`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from core import (
    campaigns,
    consent,
    contacts,
    encoding,
    idempotency,
    links,
    phones,
    preview,
    provider_accounts,
    render,
    templates,
)
from core.errors import InvalidInput, InvalidPhone, NotFound
from core.models import Contact, ExternalId, Message, Workspace
from core.models.base import utcnow

MAX_ITEMS = 1000  # messages in one request
MAX_VALIDITY_S = 7 * 86400
MIN_VALIDITY_S = 60
MAX_SCHEDULE_DAYS = 365
PAST_SLACK_S = 60  # a send_at this close to now counts as "now" (clock skew between caller and us)
MAX_TAGS = 20
FEW_NUMBERS = 20  # up to this many recipients, only their prices are read, not the whole price list
ITEM_KEYS = frozenset({"to", "contact_id", "external_id", "text", "template", "variables", "sender",
                       "consent_category", "send_at", "validity", "reference", "tags", "shorten_links"})


# Statements on the accept path are built once and run as Core statements: built per request through the ORM
# they cost about 0.4 ms each, about ten times what SQLite takes to run them.
_CONTACT = Contact.__table__.c
_CONTACTS_BY_PHONE = select(_CONTACT.id, _CONTACT.phone, _CONTACT.status, _CONTACT.attributes).where(
    _CONTACT.workspace_id == bindparam("ws"), _CONTACT.phone.in_(bindparam("phones", expanding=True)))
_WORKSPACE = select(Workspace.__table__, provider_accounts.default_provider_column(Workspace.__table__.c.id)
                    .label("default_provider")).where(Workspace.__table__.c.id == bindparam("ws"))
_MESSAGES = Message.__table__
_INSERT_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True)
# Core's multi-row INSERT needs the same columns in every row: a column some items leave out gets its default
# (every column a draft may leave out has a constant one).
_DEFAULTS = {c.name: c.default.arg if c.default is not None and c.default.is_scalar else None
             for c in _MESSAGES.columns}


class TooManyMessages(InvalidInput):
    """More than MAX_ITEMS messages in one request (HTTP 413)."""

    def __init__(self, n: int) -> None:
        super().__init__("messages", f"at most {MAX_ITEMS} messages per request, got {n}", n)


@dataclass
class Draft:
    """One item on its way to a message row."""

    index: int
    item: Mapping[str, Any]
    row: dict[str, Any] = field(default_factory=dict)
    contact: Any = None  # a Contact, or a row of _CONTACTS_BY_PHONE (id, phone, status, attributes)
    max_parts: int = templates.DEFAULT_MAX_PARTS
    shorten: bool = True


@dataclass
class Batch:
    """What every item of one request shares: workspace, provider prices, compiled templates."""

    session: Session
    rt: Any
    ws: Any  # a row of the workspaces table (every column, read-only)
    source: str
    create_contacts: bool
    now: datetime
    price_for: Any
    provider: str | None
    compiled: dict[int | str, templates.Compiled] = field(default_factory=dict)


def accept_messages(rt: Any, session: Session, workspace_id: int, items: list[dict[str, Any]], *,
                    idempotency_key: str | None = None, create_contacts: bool = True,
                    source: str = "api") -> list[dict[str, Any]]:
    """Checks, renders, prices and stores transactional messages; returns one result per item, in order.

    Each result is {index, id, status, reason, field, encoding, parts, cost, currency, reference}: status is
    `accepted` or `enqueue_failed`; `field` names the bad input of an item that was not stored (id None).
    Messages go to the dispatch queue once the caller's transaction commits. With `idempotency_key`, the same
    key and items return the first answer and store nothing (24 h); another body raises KeyReused.
    """
    if not isinstance(items, list) or not items:
        raise InvalidInput("messages", "give one message or a list of 1.." + str(MAX_ITEMS), None)
    if len(items) > MAX_ITEMS:
        raise TooManyMessages(len(items))
    digest = idempotency.body_hash({"items": items, "create_contacts": create_contacts})
    if idempotency_key is not None:
        stored = idempotency.begin(session, workspace_id, idempotency_key, digest)
        if stored is not None:
            return list(stored)
    batch = _batch(rt, session, workspace_id, source, create_contacts)
    drafts: list[Draft] = []
    results: dict[int, dict[str, Any]] = {}
    for index, item in enumerate(items):
        try:
            drafts.append(_check_item(batch, index, item))
        except InvalidInput as exc:
            results[index] = _invalid(index, item, exc)
    _resolve_recipients(batch, drafts)
    _apply_consent(batch, drafts)
    _render(batch, drafts)
    _shorten(batch, [d for d in drafts if d.shorten and d.row["status"] == "waiting" and "://" in d.row["text"]])
    _load_prices(batch, drafts)
    for draft in drafts:
        _finish(batch, draft)
    _insert(session, drafts, idempotency_key)
    for draft in drafts:
        results[draft.index] = _result(draft)
    answer = [results[i] for i in range(len(items))]
    if idempotency_key is not None:
        idempotency.finish(session, workspace_id, idempotency_key, answer)
    if any(d.row["status"] == "waiting" for d in drafts):
        from core import transactional

        transactional.kick_after_commit(rt, session, workspace_id)
    return answer


def _batch(rt: Any, session: Session, workspace_id: int, source: str, create_contacts: bool) -> Batch:
    ws = session.connection().execute(_WORKSPACE, {"ws": workspace_id}).first()
    if ws is None:
        raise NotFound(f"workspace {workspace_id} not found")
    return Batch(session, rt, ws, source, create_contacts, utcnow(), None, ws.default_provider)


def _load_prices(batch: Batch, drafts: Sequence[Draft]) -> None:
    """The provider's prices for these recipients: only the matching rows for a short request."""
    from core.pricing import PriceBook

    if batch.provider is None:
        return
    numbers = [d.row["phone"] for d in drafts if d.row["status"] == "waiting"]
    if numbers:
        few = len(numbers) <= FEW_NUMBERS
        book = PriceBook.load(batch.session, batch.ws.id, batch.provider, numbers if few else None)
        batch.price_for = book.price_for


# -- checking one item ----------------------------------------------------------------------------------


def _check_item(batch: Batch, index: int, item: Any) -> Draft:
    """Validates the shape and values of one item; raises InvalidInput naming the field."""
    if not isinstance(item, Mapping):
        raise InvalidInput("message", "must be a JSON object", None)
    unknown = sorted(set(item) - ITEM_KEYS)
    if unknown:
        raise InvalidInput(unknown[0], "unknown field", None)
    named = [k for k in ("to", "contact_id", "external_id") if item.get(k) not in (None, "")]
    if len(named) != 1:
        raise InvalidInput("to", "give exactly one of to, contact_id, external_id", None)
    if (item.get("text") is None) == (item.get("template") is None):
        raise InvalidInput("text", "give either text or template", None)
    draft = Draft(index, item)
    draft.shorten = _bool(item, "shorten_links")
    variables = item.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise InvalidInput("variables", "must be an object", None)
    contacts.check_attributes(variables)
    if item.get("template") is not None:
        saved = _compiled(batch, item["template"])
        draft.max_parts = saved.template.max_parts
        sender, category = saved.template.sender_id, saved.template.consent_category
        draft.row["template_id"] = saved.template.id
    else:
        preview.compile_text(item["text"], "text")
        sender, category, draft.max_parts = None, None, int(batch.ws.settings.get("max_parts", 6))
    draft.row.update(
        sender=_sender(item.get("sender")) or sender or batch.ws.settings.get("default_sender"),
        consent_category=_category(item.get("consent_category")) or category,
        send_after=_send_at(batch.now, item.get("send_at")), validity_s=_validity(item.get("validity")),
        reference=_reference(item.get("reference")), tags=_tags(item.get("tags")),
    )
    _recipient(batch, draft)
    return draft


def _sender(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput("sender", "must be text", value)
    try:
        return campaigns.check_sender(value)
    except InvalidInput as exc:
        raise InvalidInput("sender", exc.message, value) from None


def _bool(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name, True)
    if not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false", value)
    return value


def _compiled(batch: Batch, ref: Any) -> templates.Compiled:
    if not isinstance(ref, int | str) or isinstance(ref, bool):
        raise InvalidInput("template", "must be a template id or name", ref)
    if ref not in batch.compiled:
        try:
            batch.compiled[ref] = templates.compile_saved(templates.find_template(batch.session, batch.ws.id, ref))
        except NotFound as exc:
            raise InvalidInput("template", str(exc), ref) from None
    return batch.compiled[ref]


def _category(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidInput("consent_category", "must be up to 64 characters", value)
    return value


def _send_at(now: datetime, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("send_at", f"{value!r} is not an ISO 8601 time", value) from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("send_at", "must be an ISO 8601 time with a time zone, e.g. 2030-01-01T09:00:00Z", value)
    if value < now - timedelta(seconds=PAST_SLACK_S):
        raise InvalidInput("send_at", f"{value.isoformat()} is in the past", value.isoformat())
    if value > now + timedelta(days=MAX_SCHEDULE_DAYS):
        raise InvalidInput("send_at", f"at most {MAX_SCHEDULE_DAYS} days ahead", value.isoformat())
    return value.astimezone(UTC) if value > now else None


def _validity(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_VALIDITY_S <= value <= MAX_VALIDITY_S:
        raise InvalidInput("validity", f"seconds, {MIN_VALIDITY_S}..{MAX_VALIDITY_S}", value)
    return value


def _reference(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 200:
        raise InvalidInput("reference", "must be a string of up to 200 characters", value)
    return str(value)


def _tags(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_TAGS or \
            any(not isinstance(t, str) or not t.strip() or len(t) > 100 for t in value):
        raise InvalidInput("tags", f"up to {MAX_TAGS} tags of 1..100 characters", value)
    return sorted({t.strip() for t in value})


def _recipient(batch: Batch, draft: Draft) -> None:
    """Sets the phone (from `to`) or the contact (from contact_id / external_id)."""
    item, session, ws = draft.item, batch.session, batch.ws
    if item.get("to") not in (None, ""):
        raw = item["to"]
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise InvalidInput("to", "must be a phone number", raw)
        try:
            draft.row["phone"] = phones.normalize(raw, ws.default_region, field="to")
        except InvalidPhone:
            draft.row.update(phone=_unparseable(raw, ws.default_region), status="enqueue_failed",
                             reason=f"invalid number: {raw!r} is not a valid phone number")
        return
    if item.get("contact_id") is not None:
        contact_id = item["contact_id"]
        if isinstance(contact_id, bool) or not isinstance(contact_id, int):
            raise InvalidInput("contact_id", "must be a number", contact_id)
        try:
            draft.contact = contacts.get_contact(session, ws.id, contact_id)
        except NotFound as exc:
            raise InvalidInput("contact_id", str(exc), contact_id) from None
    else:
        ref = item["external_id"]
        if not isinstance(ref, Mapping) or not ref.get("source") or ref.get("id") in (None, ""):
            raise InvalidInput("external_id", "must be {\"source\": ..., \"id\": ...}", ref)
        found = session.scalar(select(Contact).join(ExternalId, ExternalId.contact_id == Contact.id).where(
            ExternalId.workspace_id == ws.id, ExternalId.source == str(ref["source"]),
            ExternalId.external_id == str(ref["id"])))
        if found is None:
            raise InvalidInput("external_id", f"no contact with {ref['source']} id {ref['id']!r}", dict(ref))
        draft.contact = found
    draft.row["phone"] = draft.contact.phone


def _unparseable(raw: object, region: str) -> str:
    """A number phonenumbers can read but that is not valid: stored (cut to 16 characters) with the failure.
    Text that is no number at all is bad input."""
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("to", f"{raw!r} is not a phone number", raw) from None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[:16]


def _invalid(index: int, item: Any, exc: InvalidInput) -> dict[str, Any]:
    reference = item.get("reference") if isinstance(item, Mapping) else None
    return {"index": index, "id": None, "status": "enqueue_failed", "reason": exc.message, "field": exc.field,
            "to": None, "encoding": None, "parts": 0, "cost": None, "currency": None,
            "reference": None if reference is None else str(reference)}


# -- recipients, consent, text ---------------------------------------------------------------------------


def _resolve_recipients(batch: Batch, drafts: Sequence[Draft]) -> None:
    """Finds the contacts of `to` numbers in one query; unknown numbers become contacts (source api)."""
    wanted = {d.row["phone"] for d in drafts if d.contact is None and d.row.get("status") != "enqueue_failed"}
    if not wanted:
        return
    found = _by_phone(batch, wanted)
    missing = sorted(wanted - set(found))
    if missing and batch.create_contacts:
        contacts.merge_rows(batch.session, batch.ws.id, [contacts.ContactRow(p) for p in missing], batch.source)
        found.update(_by_phone(batch, set(missing)))
    for draft in drafts:
        if draft.contact is None:
            draft.contact = found.get(draft.row["phone"])


def _by_phone(batch: Batch, phones_: set[str]) -> dict[str, Any]:
    # Consents are read in bulk by core.consent; tags and external ids are not needed here.
    rows = batch.session.connection().execute(_CONTACTS_BY_PHONE, {"ws": batch.ws.id, "phones": sorted(phones_)})
    return {c.phone: c for c in rows}


def _apply_consent(batch: Batch, drafts: Sequence[Draft]) -> None:
    live = [d for d in drafts if d.row.get("status") != "enqueue_failed" and d.contact is not None]
    verdicts = consent.check(batch.session, batch.ws, [(d.contact, d.row["consent_category"]) for d in live])
    for draft, reason in zip(live, verdicts, strict=True):
        if reason:
            draft.row.update(status="enqueue_failed", reason=reason)


def _render(batch: Batch, drafts: Sequence[Draft]) -> None:
    from core.optout import optout_url

    for draft in drafts:
        draft.row.setdefault("status", "waiting")
        draft.row.setdefault("reason", None)
        contact, item = draft.contact, draft.item
        values: dict[str, Any] = {**(contact.attributes if contact else {}), **(item.get("variables") or {}),
                                  "phone": draft.row["phone"]}
        if contact is not None:
            values["optout_url"] = optout_url(batch.rt.settings, batch.ws.id, contact.id,
                                              draft.row["consent_category"] or "marketing")
        try:
            if item.get("template") is not None:
                draft.row["text"] = batch.compiled[item["template"]].render(values)
            else:
                draft.row["text"] = render.compile_template(item["text"]).render(values)
        except render.RenderError as exc:
            draft.row["text"] = ""
            if draft.row["status"] == "waiting":
                draft.row.update(status="enqueue_failed", reason=str(exc))


def _shorten(batch: Batch, drafts: Sequence[Draft]) -> None:
    """Smart links per message, as campaigns have them (unless the item says `shorten_links: false`)."""
    if not drafts:
        return
    options = links.LinkOptions(workspace_id=batch.ws.id, expires_at=links.default_expiry(batch.ws),
                                skip_prefixes=(f"{batch.rt.settings.base_url}/u/",))
    items = [(d.row["text"], links.Recipient(d.contact.id if d.contact else None, None, None)) for d in drafts]
    texts = links.shorten_batch(batch.session, batch.rt.redis, options, items, batch.rt.settings.base_url)
    for draft, text in zip(drafts, texts, strict=True):
        draft.row["text"] = text


def _finish(batch: Batch, draft: Draft) -> None:
    """Encoding, parts, max_parts, provider and price; then the row is complete."""
    row = draft.row
    row.update(workspace_id=batch.ws.id, contact_id=draft.contact.id if draft.contact else None,
               source=batch.source, created_at=batch.now, status_at=batch.now, encoding="GSM-7", parts=0)
    if row["status"] != "waiting":
        return
    analysis = encoding.analyze(row["text"])
    row.update(encoding=analysis.encoding, parts=analysis.parts)
    if analysis.parts > draft.max_parts:
        row.update(status="enqueue_failed", reason=f"message is {analysis.parts} parts ({analysis.encoding}), "
                                                   f"over max_parts {draft.max_parts}")
    elif batch.provider is None:
        row.update(status="enqueue_failed", reason="no SMS provider is configured for this workspace")
    price = batch.price_for(row["phone"]) if batch.price_for else None
    if price is not None:
        row.update(price_per_part=price[0], currency=price[1],
                   cost=(price[0] * analysis.parts).quantize(Decimal("0.00001")))


def _insert(session: Session, drafts: Sequence[Draft], idempotency_key: str | None) -> None:
    """One multi-row INSERT .. RETURNING for the whole request, ids in the order of the items."""
    if not drafts:
        return
    for draft in drafts:
        draft.row["idempotency_key"] = f"t-{uuid.uuid4().hex}"
    defaults = {name: _DEFAULTS[name] for name in set().union(*(d.row for d in drafts)) if name in _DEFAULTS}
    rows = [{**defaults, **{k: v for k, v in d.row.items() if k in defaults}} for d in drafts]
    ids = session.connection().execute(_INSERT_MESSAGES, rows).scalars().all()
    for draft, message_id in zip(drafts, ids, strict=True):
        draft.row["id"] = message_id


def _result(draft: Draft) -> dict[str, Any]:
    row = draft.row
    accepted = row["status"] == "waiting"
    return {"index": draft.index, "id": row["id"], "status": "accepted" if accepted else "enqueue_failed",
            "reason": row.get("reason"), "field": None, "to": row["phone"], "encoding": row["encoding"],
            "parts": row["parts"], "cost": None if row.get("cost") is None else str(row["cost"]),
            "currency": row.get("currency"), "reference": row.get("reference")}
