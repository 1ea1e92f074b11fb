"""Saved message templates: one store for campaigns, the transactional API and CRM triggers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow


class MessageTemplate(Base):
    """A named SMS template (sandboxed Jinja) with language versions; messages copy its rendered text."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    languages: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)  # language -> text
    fallback_language: Mapped[str | None] = mapped_column(String(16), default=None)
    sender_id: Mapped[str | None] = mapped_column(String(16), default=None)
    consent_category: Mapped[str | None] = mapped_column(String(64), default=None)
    max_parts: Mapped[int] = mapped_column(Integer, default=6)
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
