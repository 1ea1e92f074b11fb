"""Tests of delivery reports: signatures, each gateway's parser, and applying them to messages."""

from __future__ import annotations

from itertools import count
from typing import Any

from sqlalchemy import select

from core import db, provider_accounts
from core.models import Contact, Message, MessageEvent, ProviderAccount
from core.runtime import Runtime

_keys = count(1)


def make_account(rt: Runtime, workspace_id: int, provider: str, settings: dict[str, Any]) -> ProviderAccount:
    with db.transaction(rt.sessions) as session:
        return provider_accounts.create_account(session, rt.settings, workspace_id, provider, settings)


def make_message(rt: Runtime, workspace_id: int, provider: str = "sinch", provider_message_id: str | None = None,
                 status: str = "sent", contact_id: int | None = None, key: str | None = None,
                 phone: str = "+48600100200") -> Message:
    """A message row as dispatch leaves it (campaign code is not needed for delivery reports)."""
    with db.transaction(rt.sessions) as session:
        message = Message(workspace_id=workspace_id, contact_id=contact_id, phone=phone, text="Hi!",
                          idempotency_key=key or f"k-{next(_keys)}", provider=provider,
                          provider_message_id=provider_message_id, status=status)
        session.add(message)
        session.flush()
        return message


def message(rt: Runtime, message_id: int) -> Message:
    with rt.sessions() as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


def statuses(rt: Runtime, *messages: Message) -> list[str]:
    return [message(rt, m.id).status for m in messages]


def events(rt: Runtime, message_id: int) -> list[str]:
    with rt.sessions() as session:
        query = select(MessageEvent.status).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id)
        return list(session.scalars(query))


def contact_status(rt: Runtime, contact_id: int) -> str:
    with rt.sessions() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        return contact.status
