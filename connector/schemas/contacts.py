"""Contact schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import PageArgs, page_schema
from core.models.contact import STATUSES


class ConsentIn(Schema):
    opted_in = fields.Boolean(required=True)
    source = fields.String(load_default="api", validate=validate.Length(max=64))


class ContactIn(Schema):
    phone = fields.String(required=True, metadata={"example": "+48600100200"})
    status = fields.String(validate=validate.OneOf([s for s in STATUSES if s != "deleted"]))
    attributes = fields.Dict(keys=fields.String(), load_default=dict)
    consents = fields.Dict(keys=fields.String(), values=fields.Nested(ConsentIn))
    tags = fields.List(fields.String())
    external_ids = fields.Dict(keys=fields.String(), values=fields.String())


class ContactPatch(ContactIn):
    phone = fields.String()
    attributes = fields.Dict(keys=fields.String())


class ConsentOut(Schema):
    category = fields.String()
    opted_in = fields.Boolean()
    at = fields.DateTime()
    source = fields.String()


class ContactOut(Schema):
    id = fields.Integer()
    phone = fields.String()
    status = fields.String()
    attributes = fields.Dict()
    consents = fields.Method("_consents")
    tags = fields.Method("_tags")
    external_ids = fields.Method("_external_ids")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    deleted_at = fields.DateTime(allow_none=True)

    def _consents(self, obj):  # type: ignore[no-untyped-def]
        return {c.category: {"opted_in": c.opted_in, "at": c.at.isoformat(), "source": c.source} for c in obj.consents}

    def _tags(self, obj):  # type: ignore[no-untyped-def]
        return sorted(t.tag for t in obj.tags)

    def _external_ids(self, obj):  # type: ignore[no-untyped-def]
        return {e.source: e.external_id for e in obj.external_ids}


class ContactListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    phone = fields.String(metadata={"description": "exact phone, any written form"})
    segment_id = fields.Integer()
    group_id = fields.Integer()


class ConsentPut(Schema):
    opted_in = fields.Boolean(required=True)
    source = fields.String(load_default="api", validate=validate.Length(max=64))


ContactPage = page_schema(ContactOut, "ContactPage")
