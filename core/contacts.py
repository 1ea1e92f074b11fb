"""Contacts: E.164 phones, attributes, consents, tags, soft delete and GDPR. The one write path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import db, phones
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Consent, Contact, ContactTag, ExternalId, GroupMember, Workspace
from core.models.audience import Group
from core.models.base import utcnow
from core.models.contact import STATUSES

MAX_ATTRIBUTE_KEYS = 100
MAX_ATTRIBUTE_LEN = 2000  # characters per attribute value


@dataclass(frozen=True)
class ContactRow:
    """One contact as it arrives from an import, a plugin sync or the API (phone already E.164)."""

    phone: str
    attributes: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    external_ids: dict[str, str] = field(default_factory=dict)


def check_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    if len(attributes) > MAX_ATTRIBUTE_KEYS:
        raise InvalidInput("attributes", f"at most {MAX_ATTRIBUTE_KEYS} attributes", len(attributes))
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        if not key or not isinstance(key, str) or len(key) > 100:
            raise InvalidInput("attributes", f"attribute name {key!r} must be 1..100 characters", key)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(f"attributes.{key}", "must be a string, number, boolean or null", value)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"attributes.{key}", "must not contain NUL bytes", value[:40])
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_LEN:
            raise InvalidInput(f"attributes.{key}", f"longer than {MAX_ATTRIBUTE_LEN} characters", value[:40])
        out[key] = value
    return out


def check_status(status: str) -> str:
    if status not in STATUSES or status == "deleted":
        allowed = ", ".join(s for s in STATUSES if s != "deleted")
        raise InvalidInput("status", f"{status!r} is not one of {allowed} (use DELETE to delete)", status)
    return status


def get_contact(session: Session, workspace_id: int, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        raise NotFound(f"contact {contact_id} not found")
    return contact


def find_by_phone(session: Session, workspace_id: int, phone: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.workspace_id == workspace_id, Contact.phone == phone))


def create_contact(session: Session, ws: Workspace, data: Mapping[str, Any]) -> Contact:
    phone = phones.normalize(data.get("phone"), ws.default_region)
    existing = find_by_phone(session, ws.id, phone)
    if existing is not None:
        raise Conflict(f"a contact with phone {phone} exists (id {existing.id})")
    contact = Contact(
        workspace_id=ws.id,
        phone=phone,
        status=check_status(data.get("status", "active")),
        attributes={k: v for k, v in check_attributes(data.get("attributes") or {}).items() if v is not None},
    )
    session.add(contact)
    session.flush()
    _apply_extras(session, contact, data)
    return contact


def update_contact(session: Session, ws: Workspace, contact: Contact, data: Mapping[str, Any]) -> Contact:
    """PATCH semantics: given attributes are set, an attribute set to null is removed."""
    if contact.status == "deleted":
        raise Conflict(f"contact {contact.id} is deleted; restore it first")
    if "phone" in data:
        phone = phones.normalize(data["phone"], ws.default_region)
        other = find_by_phone(session, ws.id, phone)
        if other is not None and other.id != contact.id:
            raise Conflict(f"a contact with phone {phone} exists (id {other.id})")
        contact.phone = phone
    if "status" in data:
        contact.status = check_status(data["status"])
    if "attributes" in data:
        merged = {**contact.attributes, **check_attributes(data["attributes"] or {})}
        contact.attributes = {k: v for k, v in merged.items() if v is not None}
    contact.updated_at = utcnow()
    _apply_extras(session, contact, data)
    session.flush()
    return contact


def _apply_extras(session: Session, contact: Contact, data: Mapping[str, Any]) -> None:
    for category, value in (data.get("consents") or {}).items():
        opted = value.get("opted_in") if isinstance(value, Mapping) else value
        source = value.get("source", "api") if isinstance(value, Mapping) else "api"
        set_consent(session, contact, category, bool(opted), source)
    if "tags" in data and data["tags"] is not None:
        wanted = {_check_tag(t) for t in data["tags"]}
        contact.tags = [t for t in contact.tags if t.tag in wanted]
        have = {t.tag for t in contact.tags}
        contact.tags.extend(
            ContactTag(tag=t, workspace_id=contact.workspace_id) for t in sorted(wanted - have)
        )
    for source, external_id in (data.get("external_ids") or {}).items():
        set_external_id(session, contact, source, str(external_id))
    session.flush()


def _check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
        raise InvalidInput("tags", f"tag {tag!r} must be 1..100 characters", tag)
    return tag.strip()


def set_consent(
    session: Session, contact: Contact, category: str, opted_in: bool, source: str = "api",
    at: datetime | None = None,
) -> Consent:
    if not category or len(category) > 64:
        raise InvalidInput("category", "must be 1..64 characters", category)
    consent = next((c for c in contact.consents if c.category == category), None)
    if consent is None:
        consent = Consent(category=category, workspace_id=contact.workspace_id, opted_in=opted_in)
        contact.consents.append(consent)
    consent.opted_in = opted_in
    consent.source = source
    consent.at = at or utcnow()
    session.flush()
    return consent


def set_external_id(session: Session, contact: Contact, source: str, external_id: str) -> None:
    taken = session.scalar(
        select(ExternalId).where(
            ExternalId.workspace_id == contact.workspace_id,
            ExternalId.source == source,
            ExternalId.external_id == external_id,
        )
    )
    if taken is not None and taken.contact_id != contact.id:
        raise Conflict(f"{source} id {external_id!r} belongs to contact {taken.contact_id}")
    current = next((e for e in contact.external_ids if e.source == source), None)
    if current is None:
        contact.external_ids.append(
            ExternalId(source=source, external_id=external_id, workspace_id=contact.workspace_id)
        )
    else:
        current.external_id = external_id


def delete_contact(contact: Contact) -> None:
    """Soft delete: reversible for the retention period (30 days by default)."""
    if contact.status == "deleted":
        return
    contact.status_before_delete = contact.status
    contact.status = "deleted"
    contact.deleted_at = utcnow()


def restore_contact(contact: Contact, retention_days: int) -> None:
    if contact.status != "deleted":
        raise Conflict(f"contact {contact.id} is not deleted")
    assert contact.deleted_at is not None
    deleted_at = contact.deleted_at if contact.deleted_at.tzinfo else contact.deleted_at.replace(tzinfo=utcnow().tzinfo)
    if utcnow() - deleted_at > timedelta(days=retention_days):
        raise Conflict(f"contact {contact.id} was deleted over {retention_days} days ago")
    contact.status = contact.status_before_delete or "active"
    contact.status_before_delete = None
    contact.deleted_at = None


def erase_contact(session: Session, contact: Contact) -> None:
    """GDPR erase: removes the contact and everything attached to it, for good."""
    session.execute(delete(GroupMember).where(GroupMember.contact_id == contact.id))
    session.delete(contact)
    session.flush()


def purge_deleted(session: Session, retention_days: int) -> int:
    """Erases contacts soft-deleted longer ago than the retention period. Returns how many."""
    cutoff = utcnow() - timedelta(days=retention_days)
    ids = session.scalars(
        select(Contact.id).where(Contact.status == "deleted", Contact.deleted_at < cutoff).limit(10000)
    ).all()
    if ids:
        session.execute(delete(GroupMember).where(GroupMember.contact_id.in_(ids)))
        session.execute(delete(Contact).where(Contact.id.in_(ids)))
    return len(ids)


def export_contact(session: Session, contact: Contact) -> dict[str, Any]:
    """GDPR export: everything held on one contact."""
    groups = session.scalars(
        select(Group.name).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.contact_id == contact.id)
    ).all()
    return {
        "contact": contact_dict(contact),
        "groups": list(groups),
        "exported_at": utcnow().isoformat(),
    }


def contact_dict(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "phone": contact.phone,
        "status": contact.status,
        "attributes": contact.attributes,
        "consents": {
            c.category: {"opted_in": c.opted_in, "at": c.at.isoformat(), "source": c.source}
            for c in contact.consents
        },
        "tags": sorted(t.tag for t in contact.tags),
        "external_ids": {e.source: e.external_id for e in contact.external_ids},
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
        "deleted_at": contact.deleted_at.isoformat() if contact.deleted_at else None,
    }


@dataclass
class MergeCounts:
    created: int = 0
    updated: int = 0
    repeated: list[str] = field(default_factory=list)  # phones this same import had written before


def merge_rows(
    session: Session, workspace_id: int, rows: Sequence[ContactRow], source: str, import_id: int | None = None
) -> MergeCounts:
    """Upserts a batch by phone (attributes merged, new keys winning). Used by imports and plugin syncs.

    The caller de-duplicates phones within the batch. One SELECT finds which phones exist, one
    multi-row INSERT .. ON CONFLICT writes them; consents, tags and external ids follow in bulk.
    """
    if not rows:
        return MergeCounts()
    bind = session.get_bind()
    found = session.execute(
        select(Contact.phone, Contact.last_import_id).where(
            Contact.workspace_id == workspace_id, Contact.phone.in_([r.phone for r in rows])
        )
    )
    existing = {phone: last for phone, last in found}
    repeated = [p for p, last in existing.items() if import_id is not None and last == import_id]
    now = utcnow()
    insert = db.insert_for(session)
    stmt = insert(Contact)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Contact.workspace_id, Contact.phone],
        set_={
            "attributes": db.json_merge(bind.dialect.name, Contact.attributes, stmt.excluded.attributes),
            "updated_at": stmt.excluded.updated_at,
            "last_import_id": stmt.excluded.last_import_id,
        },
    )
    values = [
        {"workspace_id": workspace_id, "phone": r.phone, "status": "active", "attributes": r.attributes,
         "created_at": now, "updated_at": now, "last_import_id": import_id}
        for r in rows
    ]
    if any(r.consents or r.tags or r.external_ids for r in rows):
        ids = {p: i for i, p in session.execute(stmt.returning(Contact.id, Contact.phone), values)}
        _merge_extras(session, workspace_id, rows, ids, source, now)
    else:
        session.execute(stmt, values)
    updated = len(existing) - len(repeated)
    return MergeCounts(created=len(rows) - len(existing), updated=updated, repeated=repeated)


def _merge_extras(
    session: Session, workspace_id: int, rows: Sequence[ContactRow], ids: dict[str, int], source: str,
    now: datetime,
) -> None:
    insert = db.insert_for(session)
    consents = [
        {"contact_id": ids[r.phone], "category": cat, "workspace_id": workspace_id, "opted_in": val,
         "at": now, "source": source}
        for r in rows for cat, val in r.consents.items()
    ]
    if consents:
        stmt = insert(Consent)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Consent.contact_id, Consent.category],
                set_={"opted_in": stmt.excluded.opted_in, "at": stmt.excluded.at, "source": stmt.excluded.source},
            ),
            consents,
        )
    tags = [{"contact_id": ids[r.phone], "tag": t, "workspace_id": workspace_id} for r in rows for t in r.tags]
    if tags:
        session.execute(insert(ContactTag).on_conflict_do_nothing(), tags)
    externals = [
        {"contact_id": ids[r.phone], "source": src, "external_id": ext, "workspace_id": workspace_id}
        for r in rows for src, ext in r.external_ids.items()
    ]
    if externals:
        stmt = insert(ExternalId)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ExternalId.contact_id, ExternalId.source],
                set_={"external_id": stmt.excluded.external_id},
            ),
            externals,
        )


def count_contacts(session: Session, workspace_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id)) or 0
