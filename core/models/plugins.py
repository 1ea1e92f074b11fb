"""CRM plugin connections, their segment mappings and the write-back outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow


class PluginConnection(Base):
    """One workspace's connection to one CRM plugin; `settings_encrypted` holds Fernet-encrypted JSON."""

    __tablename__ = "plugin_connections"
    __table_args__ = (UniqueConstraint("workspace_id", "plugin"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    plugin: Mapped[str] = mapped_column(String(64))  # the entry-point name; also the external-id source
    settings_encrypted: Mapped[str] = mapped_column(Text)
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)  # names it in trigger URLs
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | stopped (fatal error)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    contacts_cursor: Mapped[str | None] = mapped_column(Text, default=None)
    segments_cursor: Mapped[str | None] = mapped_column(Text, default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    last_sync: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # counts and the first errors
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    api_usage: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # e.g. {"used": 25, "total": 15000}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PluginSegment(Base):
    """A CRM segment synced into one of our static groups."""

    __tablename__ = "plugin_segments"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("plugin_connections.id", ondelete="CASCADE"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))


class PluginOutbox(Base):
    """One activity waiting to be written back to a CRM; `event_key` is the idempotency key sent to it."""

    __tablename__ = "plugin_outbox"
    __table_args__ = (
        UniqueConstraint("connection_id", "event_key"),
        Index("ix_plugin_outbox_due", "connection_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("plugin_connections.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # delivered | failed | clicked | replied | opted_out
    record_id: Mapped[str] = mapped_column(String(255))  # the CRM's id of the person
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # text, status, campaign, detail
    at: Mapped[datetime] = mapped_column(default=utcnow)  # when it happened
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    remote_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
