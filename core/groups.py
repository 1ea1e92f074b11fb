"""Static groups of contacts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import db
from core.errors import Conflict, InvalidInput, NotFound
from core.models import Contact, Group, GroupMember

MAX_MEMBERS_PER_CALL = 10000


def get_group(session: Session, workspace_id: int, group_id: int) -> Group:
    group = session.get(Group, group_id)
    if group is None or group.workspace_id != workspace_id:
        raise NotFound(f"group {group_id} not found")
    return group


def save_group(session: Session, workspace_id: int, name: str, group: Group | None = None) -> Group:
    if not name.strip():
        raise InvalidInput("name", "must not be empty", name)
    if group is None:
        group = Group(workspace_id=workspace_id, name=name.strip())
        session.add(group)
    else:
        group.name = name.strip()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"a group named {name!r} exists") from None
    return group


def member_count(session: Session, group_id: int) -> int:
    return session.scalar(select(func.count()).where(GroupMember.group_id == group_id)) or 0


def add_members(session: Session, group: Group, contact_ids: Sequence[int]) -> int:
    """Adds contacts of the group's workspace; ids of other workspaces are refused. Returns how many were new."""
    ids = _own_ids(session, group.workspace_id, contact_ids)
    before = member_count(session, group.id)
    insert = db.insert_for(session)
    session.execute(
        insert(GroupMember).on_conflict_do_nothing(),
        [{"group_id": group.id, "contact_id": i, "workspace_id": group.workspace_id} for i in ids],
    )
    return member_count(session, group.id) - before


def remove_members(session: Session, group: Group, contact_ids: Sequence[int]) -> int:
    result = session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.contact_id.in_(list(contact_ids)))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _own_ids(session: Session, workspace_id: int, contact_ids: Sequence[int]) -> list[int]:
    if not contact_ids:
        raise InvalidInput("contact_ids", "must not be empty", [])
    if len(contact_ids) > MAX_MEMBERS_PER_CALL:
        raise InvalidInput("contact_ids", f"at most {MAX_MEMBERS_PER_CALL} per call", len(contact_ids))
    wanted = set(contact_ids)
    found = set(
        session.scalars(select(Contact.id).where(Contact.workspace_id == workspace_id, Contact.id.in_(wanted)))
    )
    missing = sorted(wanted - found)
    if missing:
        raise InvalidInput("contact_ids", f"no such contacts: {missing[:20]}", missing[:20])
    return sorted(found)
