"""Campaigns, their A/B variants, and the workspace's content rules."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_ws_status", "workspace_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    kind: Mapped[str] = mapped_column(String(16), default="outbound")  # outbound | two_way
    status: Mapped[str] = mapped_column(String(16), default="draft")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    sender_id: Mapped[str | None] = mapped_column(String(16), default=None)
    audience: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # groups, segments, contacts
    schedule_at: Mapped[datetime | None] = mapped_column(default=None)  # UTC; None = send when started
    throttle_per_hour: Mapped[int] = mapped_column(Integer, default=36000)
    max_parts: Mapped[int] = mapped_column(Integer, default=6)
    consent_category: Mapped[str | None] = mapped_column(String(64))  # None: no consent check
    budget_cap: Mapped[Decimal | None] = mapped_column(Numeric(14, 4), default=None)
    send_window: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)  # {"start": "09:00", ...}
    booster: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, default=None)
    settings: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)  # link suffix, shortening, ...
    provider_account_id: Mapped[int | None] = mapped_column(BigId, default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # messages prepared (incl. enqueue_failed)
    excluded: Mapped[dict[str, int]] = mapped_column(JsonDoc, default=dict)  # reason -> count
    # Contact ids where parts 1.. of the Processing job begin (set once when the audience is frozen; [] = 1 part)
    prepare_plan: Mapped[list[int] | None] = mapped_column(JsonDoc, default=None)
    estimated_cost: Mapped[Decimal | None] = mapped_column(Numeric(14, 4), default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    prepared_at: Mapped[datetime | None] = mapped_column(default=None)  # every message prepared
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    variants: Mapped[list[CampaignVariant]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin", order_by="CampaignVariant.id"
    )


class CampaignVariant(Base):
    """One message version; `ratio` is its share of recipients in percent (all variants add up to 100)."""

    __tablename__ = "campaign_variants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    ratio: Mapped[int] = mapped_column(Integer, default=100)
    text: Mapped[str] = mapped_column(Text)
    languages: Mapped[dict[str, str]] = mapped_column(JsonDoc, default=dict)  # language -> text
    fallback_language: Mapped[str | None] = mapped_column(String(16), default=None)


class ContentRule(Base):
    """A workspace rule that rejects campaigns: a blocked word, URL domain, or regular expression."""

    __tablename__ = "content_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # word | domain | pattern
    value: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DispatchLease(Base):
    """One batch of a campaign's messages that a dispatch lane is sending (core/dispatch.py): `ids`, all between `lo`
    and `hi`. While it exists, no other lane takes a message between `lo` and `hi`. The lane deletes it in the
    transaction that writes the batch's last results; if the lane's worker dies, the recovery sweep gives its
    messages back once `until` has passed."""

    __tablename__ = "dispatch_leases"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    lo: Mapped[int] = mapped_column(BigId)
    hi: Mapped[int] = mapped_column(BigId)
    ids: Mapped[list[int]] = mapped_column(JsonDoc)
    until: Mapped[datetime]
