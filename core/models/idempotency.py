"""Answers kept for API Idempotency-Keys: the same key and body get the first answer for 24 hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import JsonDoc
from core.models.base import Base, BigId, utcnow


class ApiIdempotency(Base):
    __tablename__ = "api_idempotency"

    workspace_id: Mapped[int] = mapped_column(BigId, ForeignKey("workspaces.id", ondelete="CASCADE"),
                                              primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the canonical JSON body
    response: Mapped[Any] = mapped_column(JsonDoc, default=None, nullable=True)  # None while the first runs
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
