"""Messages: one SMS to one number, from a campaign or the transactional API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow

# Our statuses. Finals never change again; `waiting` becomes `sent` when the provider accepts it.
MESSAGE_STATUSES = ("waiting", "sent", "delivered", "undelivered", "expired", "error", "enqueue_failed")
FINAL_STATUSES = frozenset({"delivered", "undelivered", "expired", "error", "enqueue_failed"})


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_dispatch", "campaign_id", "status", "id"),
        Index("ix_messages_provider_message_id", "provider_message_id"),
        Index("ix_messages_contact", "contact_id", "created_at"),
        Index("ix_messages_ws_created", "workspace_id", "created_at"),
        Index("ix_messages_ws_reference", "workspace_id", "reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), default=None)
    variant_id: Mapped[int | None] = mapped_column(BigId, default=None)
    contact_id: Mapped[int | None] = mapped_column(BigId, default=None)  # kept after a GDPR erase: None
    phone: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(16), default=None)
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8), default="GSM-7")
    parts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Unique per workspace; sent to providers that de-duplicate (simulator, client_reference elsewhere).
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    provider: Mapped[str | None] = mapped_column(String(32), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(100), default=None)
    claim: Mapped[str | None] = mapped_column(String(32), default=None)  # the dispatch batch holding it
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    send_after: Mapped[datetime | None] = mapped_column(default=None)  # send window in local time
    price_per_part: Mapped[Decimal | None] = mapped_column(Numeric(12, 5), default=None)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 5), default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    status_at: Mapped[datetime | None] = mapped_column(default=None)
    # Transactional messages (campaign_id None): the caller's fields and where the message came from.
    template_id: Mapped[int | None] = mapped_column(BigId, default=None)
    reference: Mapped[str | None] = mapped_column(String(200), default=None)
    tags: Mapped[list[str] | None] = mapped_column(JsonDoc, default=None)
    validity_s: Mapped[int | None] = mapped_column(Integer, default=None)  # unsent after this long: expired
    consent_category: Mapped[str | None] = mapped_column(String(64), default=None)
    source: Mapped[str | None] = mapped_column(String(32), default=None)  # api | cli | a plugin name


class ProviderAccount(Base):
    """A workspace's SMS gateway account; `settings` holds Fernet-encrypted JSON (tokens, secrets)."""

    __tablename__ = "provider_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))  # sinch | cm | twilio | generic | simulator
    name: Mapped[str] = mapped_column(String(200), default="")
    settings_encrypted: Mapped[str] = mapped_column(Text)
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)  # names the account in callback URLs
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Price(Base):
    """Price per message part for numbers starting with `prefix` (E.164 digits); longest prefix wins."""

    __tablename__ = "prices"
    __table_args__ = (Index("uq_prices_ws_provider_prefix", "workspace_id", "provider", "prefix", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    prefix: Mapped[str] = mapped_column(String(8))
    price_per_part: Mapped[Decimal] = mapped_column(Numeric(12, 5))
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MessageEvent(Base):
    """Every delivery report as received, for the audit trail and the write-back to CRMs."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    provider_status: Mapped[str | None] = mapped_column(String(64), default=None)
    error_code: Mapped[str | None] = mapped_column(String(32), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
