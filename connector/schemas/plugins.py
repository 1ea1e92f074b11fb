"""Schemas of the plugins API: settings go in as given, come out with every secret masked."""

from __future__ import annotations

from marshmallow import Schema, fields


class PluginSettingField(Schema):
    name = fields.String()
    required = fields.Boolean()
    secret = fields.Boolean()
    description = fields.String(allow_none=True)


class PluginOut(Schema):
    name = fields.String()
    available = fields.Boolean()
    error = fields.String(allow_none=True, metadata={"description": "why the plugin cannot be loaded"})
    settings_fields = fields.List(fields.Nested(PluginSettingField))
    connected = fields.Boolean()
    status = fields.String(allow_none=True)


class PluginConnectIn(Schema):
    settings = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "the plugin's settings (GET /plugins lists them); a secret sent back masked keeps its value"})


class PluginConnectionOut(Schema):
    plugin = fields.String()
    status = fields.String(metadata={"description": "active, or stopped after a fatal error"})
    status_reason = fields.String(allow_none=True)
    settings = fields.Dict(metadata={"description": "secrets masked, e.g. ****a1b2"})
    trigger_url = fields.String(allow_none=True, metadata={
        "description": "where the CRM posts triggers (admins only; it embeds the shared secret)"})
    contacts_cursor = fields.String(allow_none=True)
    segments_cursor = fields.String(allow_none=True)
    last_sync_at = fields.DateTime(allow_none=True)
    last_sync = fields.Dict(metadata={"description": "counts and the first 100 record errors of the last sync"})
    last_error = fields.String(allow_none=True)
    last_error_at = fields.DateTime(allow_none=True)
    api_usage = fields.Dict(metadata={"description": "the CRM's daily API usage as last seen"})
    outbox = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "write-back rows by status"})
    outbox_failures = fields.List(fields.Dict(), metadata={"description": "latest rows the CRM refused, with why"})
    created_at = fields.DateTime()


class PluginProblem(Schema):
    code = fields.String()
    message = fields.String()
    fatal = fields.Boolean()


class PluginCheckOut(Schema):
    ok = fields.Boolean()
    problems = fields.List(fields.Nested(PluginProblem))


class PluginSyncIn(Schema):
    full = fields.Boolean(load_default=False, metadata={"description": "ignore the cursors and read everything"})


class PluginSyncOut(Schema):
    job_id = fields.String()
    full = fields.Boolean()


class PluginRetryOut(Schema):
    requeued = fields.Integer()
