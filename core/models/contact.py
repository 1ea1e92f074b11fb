"""Contacts with their consents, tags and external ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow

STATUSES = ("active", "blocked", "archived", "deleted")


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "phone"),
        Index("ix_contacts_ws_status", "workspace_id", "status"),
        Index("ix_contacts_ws_created", "workspace_id", "created_at"),
        Index("ix_contacts_ws_updated", "workspace_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(16))  # E.164
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_before_delete: Mapped[str | None] = mapped_column(String(16), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # The import that last wrote this row: tells a phone repeated within one file in constant memory.
    last_import_id: Mapped[int | None] = mapped_column(BigId, default=None)

    consents: Mapped[list[Consent]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )
    tags: Mapped[list[ContactTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )
    external_ids: Mapped[list[ExternalId]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )


class Consent(Base):
    """Consent of one contact for one category (marketing, transactional, ...)."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_ws_category", "workspace_id", "category", "opted_in"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    opted_in: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64), default="api")


class ContactTag(Base):
    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tags_ws_tag", "workspace_id", "tag", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))


class ExternalId(Base):
    """The id a plugin source (salesforce, idosell, ...) knows this contact by."""

    __tablename__ = "external_ids"
    __table_args__ = (UniqueConstraint("workspace_id", "source", "external_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))


class AttributeName(Base):
    """Every attribute name used in a workspace, so templates can be checked for unknown variables."""

    __tablename__ = "attribute_names"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
