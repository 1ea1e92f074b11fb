"""Plugin connections per workspace: settings stored encrypted, secrets masked on the way out, the last
sync's result and errors, and the plugin instance built for a connection (the one place it is built)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

import requests
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import crypto
from core.errors import InvalidInput, NotFound
from core.models import PluginConnection
from core.models.base import utcnow
from core.plugins import registry
from core.plugins.contract import CrmPlugin
from core.plugins.errors import FatalPluginError, PluginError
from core.settings import Settings

log = logging.getLogger(__name__)

MASK = "****"


def mask(value: Any) -> Any:
    """A secret as shown by the API: its last 4 characters when it is long enough to keep 8 hidden."""
    if value in (None, ""):
        return value
    text = str(value)
    return MASK + text[-4:] if len(text) >= 12 else MASK


def load_settings(plugin: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The plugin's settings validated by its schema; InvalidInput names the first bad field."""
    try:
        loaded = registry.get(plugin).settings_schema().load(dict(raw))
    except ValidationError as exc:
        field, messages = next(iter(exc.normalized_messages().items()))
        raise InvalidInput(f"settings.{field}", "; ".join(map(str, messages)) if isinstance(messages, list)
                           else str(messages), raw.get(field)) from None
    return dict(loaded)


def get_connection(session: Session, workspace_id: int, plugin: str) -> PluginConnection:
    found = session.scalar(select(PluginConnection).where(PluginConnection.workspace_id == workspace_id,
                                                          PluginConnection.plugin == plugin))
    if found is None:
        raise NotFound(f"this workspace has no {plugin} connection")
    return found


def list_connections(session: Session, workspace_id: int) -> list[PluginConnection]:
    return list(session.scalars(select(PluginConnection).where(PluginConnection.workspace_id == workspace_id)
                                .order_by(PluginConnection.plugin)))


def by_webhook_token(session: Session, plugin: str, token: str) -> PluginConnection | None:
    found = session.scalar(select(PluginConnection).where(PluginConnection.webhook_token == token))
    return found if found is not None and found.plugin == plugin else None


def connect(session: Session, settings: Settings, workspace_id: int, plugin: str,
            raw: Mapping[str, Any]) -> PluginConnection:
    """Creates or replaces the workspace's connection to `plugin`. Secrets sent back masked keep their old
    value, so an admin can edit one field of what GET showed. Cursors survive a settings change."""
    current = session.scalar(select(PluginConnection).where(PluginConnection.workspace_id == workspace_id,
                                                            PluginConnection.plugin == plugin))
    raw = dict(raw)
    if current is not None:
        old = decrypted(settings, current)
        for key in registry.secret_fields(plugin):
            if key in old and (key not in raw or str(raw[key]).startswith(MASK)):
                raw[key] = old[key]
    data = load_settings(plugin, raw)
    if current is None:
        current = PluginConnection(workspace_id=workspace_id, plugin=plugin, webhook_token=secrets.token_urlsafe(24),
                                   last_sync={}, api_usage={})
        session.add(current)
    current.settings_encrypted = crypto.encrypt(settings.encryption_key, data)
    current.status, current.status_reason = "active", None
    session.flush()
    return current


def decrypted(settings: Settings, connection: PluginConnection) -> dict[str, Any]:
    return crypto.decrypt(settings.encryption_key, connection.settings_encrypted)


def masked(settings: Settings, connection: PluginConnection) -> dict[str, Any]:
    """The connection's settings with every secret masked: the only form that leaves core."""
    hidden = registry.secret_fields(connection.plugin)
    return {k: mask(v) if k in hidden else v for k, v in decrypted(settings, connection).items()}


def new_http() -> requests.Session:
    """The HTTP session handed to plugins (tests replace it to reach their fakes)."""
    return requests.Session()


def build(settings: Settings, connection: PluginConnection, http: requests.Session | None = None) -> CrmPlugin:
    """The plugin instance for a connection: `cls(settings, http)` with decrypted settings."""
    cls = registry.get(connection.plugin)
    return cls(decrypted(settings, connection), http or new_http())  # type: ignore[call-arg]


def record_error(connection: PluginConnection, exc: PluginError) -> None:
    """Shows the error to the admin; a fatal one stops the connection until it is reconnected."""
    connection.last_error = f"{type(exc).__name__}: {exc}"
    connection.last_error_at = utcnow()
    if isinstance(exc, FatalPluginError):
        connection.status, connection.status_reason = "stopped", connection.last_error
        log.warning("%s connection %s stopped: %s", connection.plugin, connection.id, connection.last_error)


def record_usage(connection: PluginConnection, plugin: CrmPlugin) -> None:
    """Keeps the CRM's API usage the plugin last saw (plugins may expose an optional `api_usage` dict)."""
    usage = getattr(plugin, "api_usage", None)
    if isinstance(usage, dict) and usage:
        connection.api_usage = {**usage, "at": utcnow().isoformat()}


def status(settings: Settings, connection: PluginConnection) -> dict[str, Any]:
    return {
        "plugin": connection.plugin, "status": connection.status, "status_reason": connection.status_reason,
        "settings": masked(settings, connection),
        "trigger_url": f"{settings.base_url.rstrip('/')}/webhooks/plugins/{connection.plugin}/"
                       f"{connection.webhook_token}",
        "contacts_cursor": connection.contacts_cursor, "segments_cursor": connection.segments_cursor,
        "last_sync_at": connection.last_sync_at, "last_sync": connection.last_sync or {},
        "last_error": connection.last_error, "last_error_at": connection.last_error_at,
        "api_usage": connection.api_usage or {}, "created_at": connection.created_at,
    }


def run_check(settings: Settings, connection: PluginConnection,
              http: requests.Session | None = None) -> list[dict[str, Any]]:
    """The plugin's health check; fatal problems are shown as the connection's last error."""
    plugin = build(settings, connection, http)
    problems = plugin.check()
    record_usage(connection, plugin)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        connection.last_error = "; ".join(f"{p.code}: {p.message}" for p in fatal)
        connection.last_error_at = utcnow()
    return [{"code": p.code, "message": p.message, "fatal": p.fatal} for p in problems]
