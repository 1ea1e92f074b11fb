"""Contacts: E.164 phones, attributes, consents, tags, soft delete and GDPR. The one write path."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import TextClause, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from core import db, phones
from core.errors import Conflict, InvalidInput, NotFound
from core.models import AttributeName, Consent, Contact, ContactTag, ExternalId, GroupMember, Workspace
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
    remember_attributes(session, ws.id, contact.attributes)
    _apply_extras(session, contact, data)
    return contact


def remember_attributes(session: Session, workspace_id: int, names: Iterable[str]) -> None:
    """Records attribute names in use, so templates can be checked for unknown variables."""
    rows = [{"workspace_id": workspace_id, "name": n} for n in sorted(set(names))]
    if rows:
        session.execute(db.insert_for(session)(AttributeName).on_conflict_do_nothing(), rows)


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
        given = check_attributes(data["attributes"] or {})
        remember_attributes(session, ws.id, [k for k, v in given.items() if v is not None])
        merged = {**contact.attributes, **given}
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
    """GDPR erase: removes the contact and everything attached to it, for good. Messages stay for the
    campaign counts, with the number and text blanked."""
    from core.models import Click, Message, ShortLink

    session.execute(
        update(Message).where(Message.contact_id == contact.id).values(contact_id=None, phone="", text="")
    )
    session.execute(update(Click).where(Click.contact_id == contact.id).values(contact_id=None, user_agent=None))
    session.execute(update(ShortLink).where(ShortLink.contact_id == contact.id).values(contact_id=None))
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


# Each batch goes to the database as one JSON parameter, rows as [phone, attributes, consents, tags,
# external_ids], and is upserted by one statement per table: no per-row Python work beyond encoding it.
# PostgreSQL does it all in one statement; `xmax = 0` marks the rows it inserted, and the replaced row's
# last_import_id is read from the statement's own snapshot (which still shows the row before the update).
_PG_MERGE = """
WITH batch AS (
    SELECT e->>0 AS phone, e->1 AS attributes, e->2 AS consents, e->3 AS tags, e->4 AS external_ids
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e
), up AS (
    INSERT INTO contacts AS c (workspace_id, phone, status, attributes, created_at, updated_at, last_import_id)
    SELECT CAST(:ws AS bigint), phone, 'active', attributes, :now, :now, CAST(:import_id AS bigint) FROM batch
    ON CONFLICT (workspace_id, phone) DO UPDATE SET attributes = c.attributes || excluded.attributes,
        updated_at = excluded.updated_at, last_import_id = excluded.last_import_id
    RETURNING c.id, c.phone, c.xmax = 0 AS inserted, CASE WHEN c.xmax = 0 THEN NULL
        ELSE (SELECT o.last_import_id FROM contacts AS o WHERE o.id = c.id) END AS import_before
){extras}
SELECT count(*) FILTER (WHERE inserted),
    array_agg(phone) FILTER (WHERE import_before = CAST(:import_id AS bigint)) FROM up
"""
# Each extra table: the INSERT .. SELECT over the upserted rows, and its ON CONFLICT clause. Rows of contacts
# this statement inserted cannot conflict, and a plain INSERT costs about half as much, so they go apart.
_PG_EXTRAS = {
    "consents": (
        """INSERT INTO consents (contact_id, category, workspace_id, opted_in, at, source)
    SELECT up.id, kv.key, CAST(:ws AS bigint), CAST(kv.value AS boolean), :now, :source
    FROM up JOIN batch USING (phone) CROSS JOIN LATERAL jsonb_each(batch.consents) AS kv""",
        "ON CONFLICT (contact_id, category) DO UPDATE SET opted_in = excluded.opted_in, at = excluded.at, "
        "source = excluded.source",
    ),
    "tags": (
        """INSERT INTO contact_tags (contact_id, tag, workspace_id)
    SELECT DISTINCT up.id, t.tag, CAST(:ws AS bigint)
    FROM up JOIN batch USING (phone) CROSS JOIN LATERAL jsonb_array_elements_text(batch.tags) AS t(tag)""",
        "ON CONFLICT DO NOTHING",
    ),
    "external_ids": (
        """INSERT INTO external_ids (contact_id, source, workspace_id, external_id)
    SELECT up.id, x.key, CAST(:ws AS bigint), x.value
    FROM up JOIN batch USING (phone) CROSS JOIN LATERAL jsonb_each_text(batch.external_ids) AS x""",
        "ON CONFLICT (contact_id, source) DO UPDATE SET external_id = excluded.external_id",
    ),
}


def _pg_extras(names: Sequence[str]) -> str:
    """The WITH parts writing the named extra tables, for contacts inserted and for contacts updated."""
    return "".join(
        f", {name}_of_new AS ({_PG_EXTRAS[name][0]}\n    WHERE up.inserted)"
        f", {name}_of_old AS ({_PG_EXTRAS[name][0]}\n    WHERE NOT up.inserted {_PG_EXTRAS[name][1]})"
        for name in names
    )


# SQLite: one SELECT tells existing phones, then one INSERT .. SELECT per table reads the same JSON.
_SQLITE_EXISTING = """
SELECT phone, last_import_id FROM contacts
WHERE workspace_id = :ws AND phone IN (SELECT json_extract(value, '$[0]') FROM json_each(:rows))
"""
_SQLITE_MERGE = """
INSERT INTO contacts (workspace_id, phone, status, attributes, created_at, updated_at, last_import_id)
SELECT :ws, json_extract(value, '$[0]'), 'active', json_extract(value, '$[1]'), :now, :now, :import_id
FROM json_each(:rows) WHERE true
ON CONFLICT (workspace_id, phone) DO UPDATE SET attributes = json_patch(attributes, excluded.attributes),
    updated_at = excluded.updated_at, last_import_id = excluded.last_import_id
"""
# CROSS JOIN fixes SQLite's join order: batch outside, contacts by index inside (not the whole workspace).
_SQLITE_ROWS = (
    "json_each(:rows) AS r CROSS JOIN contacts AS c ON c.workspace_id = :ws AND c.phone = json_extract(r.value, '$[0]')"
)
_SQLITE_EXTRAS = {
    "consents": f"""
INSERT INTO consents (contact_id, category, workspace_id, opted_in, at, source)
SELECT c.id, kv.key, :ws, kv.value, :now, :source FROM {_SQLITE_ROWS} JOIN json_each(r.value, '$[2]') AS kv
WHERE true ON CONFLICT (contact_id, category) DO UPDATE
SET opted_in = excluded.opted_in, at = excluded.at, source = excluded.source
""",
    "tags": f"""
INSERT INTO contact_tags (contact_id, tag, workspace_id)
SELECT c.id, t.value, :ws FROM {_SQLITE_ROWS} JOIN json_each(r.value, '$[3]') AS t
WHERE true ON CONFLICT DO NOTHING
""",
    "external_ids": f"""
INSERT INTO external_ids (contact_id, source, workspace_id, external_id)
SELECT c.id, x.key, :ws, x.value FROM {_SQLITE_ROWS} JOIN json_each(r.value, '$[4]') AS x
WHERE true ON CONFLICT (contact_id, source) DO UPDATE SET external_id = excluded.external_id
""",
}


def merge_rows(
    session: Session, workspace_id: int, rows: Sequence[ContactRow], source: str, import_id: int | None = None
) -> MergeCounts:
    """Upserts a batch by phone (attributes merged, new keys winning). Used by imports and plugin syncs.

    The caller de-duplicates phones within the batch. The batch travels as one JSON parameter; one
    INSERT .. SELECT .. ON CONFLICT writes the contacts, and consents, tags and external ids follow in bulk
    (see _PG_MERGE and _SQLITE_MERGE).
    """
    if not rows:
        return MergeCounts()
    remember_attributes(session, workspace_id, {k for r in rows for k in r.attributes})
    extras = [name for name in _PG_EXTRAS if any(map(attrgetter(name), rows))]
    fields = attrgetter("phone", "attributes", "consents", "tags", "external_ids")
    params = {
        "rows": json.dumps(list(map(fields, rows)), ensure_ascii=False),
        "ws": workspace_id, "now": utcnow(), "import_id": import_id, "source": source,
    }
    if session.get_bind().dialect.name == "postgresql":
        sql = _PG_MERGE.format(extras=_pg_extras(extras))
        created, repeated = session.execute(_merge_text(sql), params).one()
        repeated = set(repeated or ())
        updated = len(rows) - created - len(repeated)
    else:
        existing = {phone: last for phone, last in session.execute(_merge_text(_SQLITE_EXISTING), params)}
        repeated = {p for p, last in existing.items() if import_id is not None and last == import_id}
        session.execute(_merge_text(_SQLITE_MERGE), params)
        for name in extras:
            session.execute(_merge_text(_SQLITE_EXTRAS[name]), params)
        created, updated = len(rows) - len(existing), len(existing) - len(repeated)
    in_order = [r.phone for r in rows if r.phone in repeated] if repeated else []
    return MergeCounts(created=created, updated=updated, repeated=in_order)


def _merge_text(sql: str) -> TextClause:
    # `now` goes through the column type, so SQLite stores it in the same text form as ORM writes.
    if ":now" not in sql:
        return text(sql)
    return text(sql).bindparams(bindparam("now", type_=Contact.__table__.c.updated_at.type))


def count_contacts(session: Session, workspace_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Contact).where(Contact.workspace_id == workspace_id)) or 0
