"""CRM plugins of the caller's workspace: list, connect, check, sync now, status with the last errors."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from connector.auth import identity, requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.plugins import (
    PluginCheckOut,
    PluginConnectIn,
    PluginConnectionOut,
    PluginOut,
    PluginRetryOut,
    PluginSyncIn,
    PluginSyncOut,
)
from core.plugins import connections, outbox, registry, sync
from core.plugins.errors import PluginNotFound

blp = Blueprint("plugins", __name__, description="CRM plugins (admin connects; viewers see status, masked)")


def _out(name: str) -> dict[str, Any]:
    connection = connections.get_connection(db(), workspace_id(), name)
    out = connections.status(rt().settings, connection)
    if identity().role != "admin":
        out["trigger_url"] = None
    out["outbox"] = outbox.counts(db(), connection.id)
    out["outbox_failures"] = outbox.failures(db(), connection.id)
    return out


def _fields(name: str) -> list[dict[str, Any]]:
    try:
        schema = registry.get(name).settings_schema()
    except PluginNotFound:
        return []
    return [{"name": f.data_key or key, "required": f.required, "secret": bool(f.metadata.get("secret")),
             "description": f.metadata.get("description")} for key, f in schema.fields.items()]


@blp.route("")
class PluginList(MethodView):
    @requires("viewer")
    @blp.response(200, PluginOut(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Installed plugins (unavailable ones with the reason) and this workspace's connections."""
        ours = {c.plugin: c for c in connections.list_connections(db(), workspace_id())}
        return [{"name": name, "available": found.available, "error": found.error, "settings_fields": _fields(name),
                 "connected": name in ours, "status": ours[name].status if name in ours else None}
                for name, found in registry.installed().items()]


@blp.route("/<name>")
class PluginConnection(MethodView):
    @requires("viewer")
    @blp.response(200, PluginConnectionOut)
    def get(self, name: str) -> dict[str, Any]:
        return _out(name)

    @requires("admin")
    @blp.arguments(PluginConnectIn)
    @blp.response(200, PluginConnectionOut)
    def put(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """Connect (or reconnect) with these settings; secrets are stored encrypted. Run /check next."""
        try:
            connections.connect(db(), rt().settings, workspace_id(), name, data["settings"])
        except PluginNotFound as exc:
            abort(404, message=str(exc))
        return _out(name)

    @requires("admin")
    @blp.response(204)
    def delete(self, name: str) -> None:
        """Disconnect; synced contacts and groups stay, queued write-backs are dropped."""
        db().delete(connections.get_connection(db(), workspace_id(), name))


@blp.route("/<name>/check")
class PluginCheck(MethodView):
    @requires("admin")
    @blp.response(200, PluginCheckOut)
    def post(self, name: str) -> dict[str, Any]:
        """Log in and check permissions and fields; names what is wrong."""
        problems = connections.run_check(rt().settings, connections.get_connection(db(), workspace_id(), name))
        return {"ok": not any(p["fatal"] for p in problems), "problems": problems}


@blp.route("/<name>/sync")
class PluginSync(MethodView):
    @requires("admin")
    @blp.arguments(PluginSyncIn)
    @blp.response(202, PluginSyncOut)
    def post(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        """Run a sync now (in a worker); `full` ignores the stored cursors."""
        connection = connections.get_connection(db(), workspace_id(), name)
        return {"job_id": sync.enqueue(rt().redis, connection.id, data["full"]), "full": data["full"]}


@blp.route("/<name>/outbox/retry")
class PluginOutboxRetry(MethodView):
    @requires("admin")
    @blp.response(200, PluginRetryOut)
    def post(self, name: str) -> dict[str, Any]:
        """Queue the write-backs that failed for good once more (after fixing the cause)."""
        connection = connections.get_connection(db(), workspace_id(), name)
        return {"requeued": outbox.retry_failed(db(), connection.id)}
