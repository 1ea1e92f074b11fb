"""Plugin syncs: contacts through `core.contacts.merge_rows` (the CSV import's write path), deletions as
soft deletes, segments as static groups. Each page commits with its cursor, so a crash resumes after the
last page that landed and never skips one."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import contacts, db, groups, phones
from core.models import Contact, ExternalId, Group, GroupMember, PluginConnection, PluginSegment, Workspace
from core.models.base import utcnow
from core.plugins import connections
from core.plugins.contract import ContactRecord, CrmPlugin, Page, SegmentRecord
from core.plugins.errors import FatalPluginError, PluginError
from core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ERRORS = 100  # record errors kept on the connection for the admin
CHUNK = 500


@dataclass
class SyncResult:
    pages: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    segments: int = 0
    members_added: int = 0
    members_removed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def note(self, record: str, error: str) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"record": record, "error": error})

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def run(rt: Runtime, connection_id: int, full: bool = False, http: requests.Session | None = None) -> SyncResult:
    """Syncs contacts, then segments (members need their contacts). `full` ignores the stored cursors.

    A fatal plugin error stops the connection; a retriable one is recorded and raised for the job's retry.
    """
    result = SyncResult()
    with db.transaction(rt.sessions) as session:
        connection = session.get(PluginConnection, connection_id)
        if connection is None or connection.status != "active":
            return result
        plugin = connections.build(rt.settings, connection, http)
        region = session.get(Workspace, connection.workspace_id).default_region  # type: ignore[union-attr]
        cursors = (None, None) if full else (connection.contacts_cursor, connection.segments_cursor)
    try:
        _pages(rt, connection_id, plugin.sync_contacts(cursors[0]), "contacts_cursor",
               lambda s, c, recs: apply_contacts(s, c, region, recs, result), result)
        _pages(rt, connection_id, plugin.sync_segments(cursors[1]), "segments_cursor",
               lambda s, c, recs: apply_segments(s, c, recs, result), result)
    except PluginError as exc:
        _finish(rt, connection_id, plugin, result, exc)
        if isinstance(exc, FatalPluginError):
            return result
        raise
    _finish(rt, connection_id, plugin, result, None)
    return result


def _pages(rt: Runtime, connection_id: int, pages: Iterator[Page[Any]], cursor_column: str,
           apply: Any, result: SyncResult) -> None:
    for page in pages:
        with db.transaction(rt.sessions) as session:
            connection = session.get(PluginConnection, connection_id)
            assert connection is not None
            apply(session, connection, page.records)
            setattr(connection, cursor_column, page.cursor)  # same transaction as the page's rows
        result.pages += 1


def _finish(rt: Runtime, connection_id: int, plugin: CrmPlugin, result: SyncResult,
            error: PluginError | None) -> None:
    with db.transaction(rt.sessions) as session:
        connection = session.get(PluginConnection, connection_id)
        if connection is None:
            return
        connection.last_sync_at = utcnow()
        connection.last_sync = {**result.as_dict(), "ok": error is None}
        connections.record_usage(connection, plugin)
        if error is not None:
            connections.record_error(connection, error)


def apply_contacts(session: Session, connection: PluginConnection, region: str,
                   records: Sequence[ContactRecord], result: SyncResult) -> None:
    """Live records merge by phone; deleted ones soft-delete the contact holding their external id."""
    source, ws = connection.plugin, connection.workspace_id
    live: dict[str, contacts.ContactRow] = {}
    normalized = phones.normalize_many([r.phone or "" for r in records if not r.deleted], region)
    for record, phone in zip([r for r in records if not r.deleted], normalized, strict=True):
        if phone is None:
            result.note(record.external_id, f"no valid phone number ({record.phone!r})")
            continue
        live.pop(phone, None)  # the same phone twice in a page: the later record wins
        live[phone] = contacts.ContactRow(phone=phone, attributes=dict(record.attributes),
                                          consents=dict(record.consents),
                                          external_ids={source: record.external_id})
    _move_external_ids(session, ws, source, live)
    counts = contacts.merge_rows(session, ws, list(live.values()), source=source)
    result.created += counts.created
    result.updated += counts.updated
    result.deleted += soft_delete(session, ws, source, [r.external_id for r in records if r.deleted])


def _move_external_ids(session: Session, ws: int, source: str, rows: dict[str, contacts.ContactRow]) -> None:
    """A CRM record whose phone changed: our contact follows it when the new number is free; otherwise the
    contact that already has the number takes over the external id (merge_rows then writes it)."""
    by_ext = {row.external_ids[source]: phone for phone, row in rows.items()}
    for chunk in _chunks(list(by_ext)):
        held = session.execute(select(ExternalId.external_id, Contact.id, Contact.phone)
                               .join(Contact, Contact.id == ExternalId.contact_id)
                               .where(ExternalId.workspace_id == ws, ExternalId.source == source,
                                      ExternalId.external_id.in_(chunk))).all()
        for ext, contact_id, phone in held:
            new_phone = by_ext[ext]
            if phone == new_phone:
                continue
            if contacts.find_by_phone(session, ws, new_phone) is None:
                session.execute(update(Contact).where(Contact.id == contact_id).values(phone=new_phone))
            else:
                session.execute(delete(ExternalId).where(ExternalId.contact_id == contact_id,
                                                         ExternalId.source == source))


def soft_delete(session: Session, ws: int, source: str, external_ids: Sequence[str]) -> int:
    """Soft-deletes (restorable for the retention period) the contacts these CRM ids name."""
    done = 0
    for chunk in _chunks(list(external_ids)):
        ids = session.scalars(select(ExternalId.contact_id).where(
            ExternalId.workspace_id == ws, ExternalId.source == source, ExternalId.external_id.in_(chunk))).all()
        if not ids:
            continue
        outcome = session.execute(
            update(Contact).where(Contact.id.in_(ids), Contact.status != "deleted")
            .values(status_before_delete=Contact.status, status="deleted", deleted_at=utcnow())
            .execution_options(synchronize_session=False))
        done += outcome.rowcount or 0  # type: ignore[attr-defined]
    return done


def apply_segments(session: Session, connection: PluginConnection, records: Sequence[SegmentRecord],
                   result: SyncResult) -> None:
    """Each CRM segment is one static group; members are added and removed by their external ids."""
    for record in records:
        link = session.get(PluginSegment, (connection.id, record.external_id))
        if record.deleted:
            if link is not None:
                session.execute(delete(Group).where(Group.id == link.group_id))
            continue
        group = _group_for(session, connection, record, link)
        result.segments += 1
        added = _contact_ids(session, connection, record.added)
        if added:
            before = groups.member_count(session, group.id)
            session.execute(db.insert_for(session)(GroupMember).on_conflict_do_nothing(),
                            [{"group_id": group.id, "contact_id": i, "workspace_id": group.workspace_id}
                             for i in added])
            result.members_added += groups.member_count(session, group.id) - before
        removed = _contact_ids(session, connection, record.removed)
        if removed:
            result.members_removed += groups.remove_members(session, group, removed)


def _group_for(session: Session, connection: PluginConnection, record: SegmentRecord,
               link: PluginSegment | None) -> Group:
    label = f"{connection.plugin}: {record.name or record.external_id}"[:200]
    if link is not None:
        group = session.get(Group, link.group_id)
        assert group is not None
        if record.name and group.name != label and not _name_taken(session, group.workspace_id, label):
            group.name = label
        return group
    if _name_taken(session, connection.workspace_id, label):
        label = f"{label[:170]} ({record.external_id})"
    group = Group(workspace_id=connection.workspace_id, name=label)
    session.add(group)
    session.flush()
    session.add(PluginSegment(connection_id=connection.id, external_id=record.external_id, group_id=group.id))
    return group


def _name_taken(session: Session, ws: int, name: str) -> bool:
    return session.scalar(select(Group.id).where(Group.workspace_id == ws, Group.name == name)) is not None


def _contact_ids(session: Session, connection: PluginConnection, external_ids: Iterable[str]) -> list[int]:
    out: list[int] = []
    for chunk in _chunks(list(external_ids)):
        out.extend(session.scalars(select(ExternalId.contact_id).where(
            ExternalId.workspace_id == connection.workspace_id, ExternalId.source == connection.plugin,
            ExternalId.external_id.in_(chunk))))
    return out


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


SYNC_RETRY_S = [60, 300, 900, 3600, 3600]  # seconds; a spent daily quota needs the long ones


def enqueue(connection: Any, connection_id: int, full: bool = False) -> str:
    """Queues a sync of one connection (job id per connection: one at a time); returns the job id."""
    from rq import Retry

    from core import queues

    job_id = f"plugin-sync-{connection_id}"
    queues.queue(connection).enqueue("core.jobs.sync_plugin", connection_id, full, job_id=job_id,
                                     job_timeout=6 * 3600, retry=Retry(max=len(SYNC_RETRY_S), interval=SYNC_RETRY_S),
                                     failure_ttl=7 * 86400)
    return job_id
