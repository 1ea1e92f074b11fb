"""Following outgoing messages (campaign and transactional): one with its events and clicks, filtered
listings, a streamed CSV export, and cancelling a scheduled one."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Select, String, cast, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import links
from core.errors import Conflict, NotFound
from core.exports import escape_cell
from core.models import Click, Message, MessageEvent, ShortLink
from core.models.base import utcnow

EXPORT_BATCH = 5000
EXPORT_COLUMNS = ("id", "created_at", "status", "phone", "sender", "campaign_id", "contact_id", "reference", "tags",
                  "encoding", "parts", "cost", "currency", "reason", "error_code", "provider_message_id", "sent_at",
                  "status_at", "text")


def get_message(session: Session, workspace_id: int, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.workspace_id != workspace_id:
        raise NotFound(f"message {message_id} not found")
    return message


def message_detail(session: Session, message: Message) -> dict[str, Any]:
    """The message with every status event (time, provider code) and the clicks on its links."""
    events = session.scalars(select(MessageEvent).where(MessageEvent.message_id == message.id)
                             .order_by(MessageEvent.at, MessageEvent.id)).all()
    tokens = [url.rstrip("/").rsplit("/", 1)[-1] for _, _, url in links.find_urls(message.text or "")]
    clicks: list[dict[str, Any]] = []
    if tokens:
        rows = session.execute(select(ShortLink.target_url, Click.at, Click.is_bot)
                               .join(Click, Click.link_id == ShortLink.id)
                               .where(ShortLink.workspace_id == message.workspace_id, ShortLink.token.in_(tokens))
                               .order_by(Click.at)).all()
        clicks = [{"url": url, "at": at, "bot": bot} for url, at, bot in rows]
    return {"message": message, "events": list(events), "clicks": clicks, "replies": []}


def message_query(workspace_id: int, filters: Mapping[str, Any]) -> Select[tuple[Message]]:
    """Outgoing messages, newest first, by status, recipient, sender, reference, tag, campaign and time."""
    query = select(Message).where(Message.workspace_id == workspace_id)
    for name, column in (("status", Message.status), ("to", Message.phone), ("sender", Message.sender),
                         ("reference", Message.reference), ("campaign_id", Message.campaign_id),
                         ("contact_id", Message.contact_id)):
        if filters.get(name) is not None:
            query = query.where(column == filters[name])
    if filters.get("transactional"):
        query = query.where(Message.campaign_id.is_(None))
    if filters.get("since") is not None:
        query = query.where(Message.created_at >= filters["since"])
    if filters.get("until") is not None:
        query = query.where(Message.created_at < filters["until"])
    if filters.get("tag"):
        # JSON text on both databases: the quotes make it an exact match of one tag.
        query = query.where(cast(Message.tags, String).contains(f'"{filters["tag"]}"', autoescape=True))
    return query.order_by(Message.id.desc())


def export_csv(sessions: sessionmaker[Session], workspace_id: int, filters: Mapping[str, Any]) -> Iterator[str]:
    """Yields CSV in chunks: a header, then messages newest first, 5,000 per read (keyset on id)."""
    text = io.StringIO()
    writer = csv.writer(text)

    def line(values: list[Any]) -> str:
        writer.writerow([escape_cell(v) for v in values])
        out = text.getvalue()
        text.seek(0)
        text.truncate()
        return out

    yield line(list(EXPORT_COLUMNS))
    query = message_query(workspace_id, filters)
    last: int | None = None
    while True:
        with sessions() as session:
            page = query if last is None else query.where(Message.id < last)
            batch = session.scalars(page.limit(EXPORT_BATCH)).all()
        if not batch:
            return
        yield "".join(line([_cell(m, c) for c in EXPORT_COLUMNS]) for m in batch)
        last = batch[-1].id


def _cell(message: Message, column: str) -> Any:
    value = getattr(message, column)
    if column == "tags":
        return " ".join(value or [])
    return value.isoformat() if hasattr(value, "isoformat") else value


def cancel_message(session: Session, message: Message) -> Message:
    """Cancels a message that is still scheduled (or waiting); Conflict once it went to the provider."""
    if message.status != "waiting" or message.claim is not None:
        raise Conflict(f"message {message.id} is {message.status if message.claim is None else 'being sent'}; "
                       "only a message not yet handed to the provider can be cancelled")
    if message.campaign_id is not None and _leased(session, message):
        raise Conflict(f"message {message.id} is being sent and can no longer be cancelled")
    result = session.execute(update(Message).where(Message.id == message.id, Message.status == "waiting",
                                                   Message.claim.is_(None))
                             .values(status="enqueue_failed", reason="cancelled", status_at=utcnow())
                             .execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"message {message.id} is being sent and can no longer be cancelled")
    session.refresh(message)
    return message


def _leased(session: Session, message: Message) -> bool:
    """Whether a dispatch lane is sending this campaign message; the campaign's row stays locked until the
    cancel commits, so no lane can lease it meanwhile (core/dispatch.py)."""
    from core import db, dispatch
    from core.models import Campaign

    db.lock_row(session, Campaign.__table__, message.campaign_id)
    return bool(dispatch.leased(session, message.campaign_id, [message.id]))
