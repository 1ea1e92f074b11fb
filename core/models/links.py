"""Short-link domains, per-recipient short links and their clicks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, BigId, utcnow

IDENTITY_MODES = ("first", "all", "never")  # when the one-time identity parameter is appended


class LinkDomain(Base):
    """A short-link host of a workspace, with an optional messaging limit (None = unlimited)."""

    __tablename__ = "link_domains"
    __table_args__ = (UniqueConstraint("workspace_id", "host"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    host: Mapped[str] = mapped_column(String(253))
    scheme: Mapped[str] = mapped_column(String(8), default="https")
    message_limit: Mapped[int | None] = mapped_column(BigInteger, default=None)
    messages_used: Mapped[int] = mapped_column(BigInteger, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ShortLink(Base):
    """One recipient's short link. Message and campaign ids are plain ids: those tables come later."""

    __tablename__ = "short_links"
    __table_args__ = (
        Index("ix_short_links_ws_domain_suffix", "workspace_id", "domain_id", "suffix"),
        Index("ix_short_links_campaign", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("link_domains.id", ondelete="SET NULL"), default=None)
    suffix: Mapped[str | None] = mapped_column(String(40), default=None)
    target_url: Mapped[str] = mapped_column(Text)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    variant_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    identity_mode: Mapped[str] = mapped_column(String(8), default="first")
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Click(Base):
    """One hit on a short link. `stream_id` is the Redis stream entry id: a replayed entry never counts twice."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_campaign", "campaign_id", "is_bot", "contact_id"),
        Index("ix_clicks_ws_contact", "workspace_id", "contact_id"),
        Index("ix_clicks_link", "link_id", "is_bot"),
        Index("ix_clicks_identity", "identity_token"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("short_links.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    campaign_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    variant_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    identity_token: Mapped[str | None] = mapped_column(String(32), default=None)  # appended as smsc_id
    stream_id: Mapped[str] = mapped_column(String(32), unique=True)
