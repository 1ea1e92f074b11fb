"""Workspaces and API keys: keys are shown once and stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.models import ApiKey, Workspace
from core.models.base import utcnow
from core.models.workspace import ROLES
from core.phones import is_region

KEY_PREFIX = "smsc"


@dataclass(frozen=True)
class KeyIdentity:
    workspace_id: int
    role: str
    key_id: int


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is as safe as a slow one and keeps auth cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def check_region(region: str) -> str:
    if not is_region(region):
        raise InvalidInput("default_region", f"{region!r} is not an ISO 3166 region code", region)
    return region.upper()


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("timezone", f"{name!r} is not an IANA time zone", name) from None
    return name


def create_workspace(
    session: Session, name: str, default_region: str = "PL", timezone: str = "Europe/Warsaw"
) -> Workspace:
    if not name.strip():
        raise InvalidInput("name", "must not be empty", name)
    ws = Workspace(
        name=name.strip(),
        default_region=check_region(default_region),
        timezone=check_timezone(timezone),
        settings={},
    )
    session.add(ws)
    session.flush()
    return ws


def update_workspace(session: Session, ws: Workspace, changes: dict[str, Any]) -> Workspace:
    if "name" in changes:
        ws.name = changes["name"]
    if "default_region" in changes:
        ws.default_region = check_region(changes["default_region"])
    if "timezone" in changes:
        ws.timezone = check_timezone(changes["timezone"])
    if "settings" in changes:
        ws.settings = {**ws.settings, **changes["settings"]}
    session.flush()
    return ws


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    ws = session.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound(f"workspace {workspace_id} not found")
    return ws


def create_key(session: Session, workspace_id: int, role: str, name: str = "") -> tuple[ApiKey, str]:
    """Creates a key and returns it with its secret; the secret is never retrievable again."""
    if role not in ROLES:
        raise InvalidInput("role", f"{role!r} is not one of {', '.join(ROLES)}", role)
    get_workspace(session, workspace_id)
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(workspace_id=workspace_id, role=role, name=name, prefix=prefix, key_hash=hash_key(secret))
    session.add(key)
    session.flush()
    return key, secret


_KEY = ApiKey.__table__.c
_KEY_BY_HASH = select(_KEY.workspace_id, _KEY.role, _KEY.id, _KEY.revoked_at).where(
    _KEY.key_hash == bindparam("key_hash"))  # built once: every API request runs it


def authenticate(session: Session, secret: str) -> KeyIdentity | None:
    """The workspace and role of a key, or None for an unknown or revoked key."""
    found = session.connection().execute(_KEY_BY_HASH, {"key_hash": hash_key(secret)}).first()
    if found is None or found.revoked_at is not None:
        return None
    return KeyIdentity(found.workspace_id, found.role, found.id)


def revoke_key(session: Session, workspace_id: int, key_id: int) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.workspace_id != workspace_id:
        raise NotFound(f"key {key_id} not found")
    key.revoked_at = key.revoked_at or utcnow()


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)
