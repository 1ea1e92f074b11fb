"""Group and segment schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import page_schema


class GroupIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class GroupOut(Schema):
    id = fields.Integer()
    name = fields.String()
    members = fields.Integer(metadata={"description": "live count"})
    created_at = fields.DateTime()


class MembersIn(Schema):
    contact_ids = fields.List(fields.Integer(), required=True, validate=validate.Length(min=1, max=10000))


class MembersOut(Schema):
    changed = fields.Integer()
    members = fields.Integer()


class SegmentIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    filter = fields.Dict(
        required=True,
        metadata={"example": {"all": [{"attr": "city", "op": "eq", "value": "Kraków"},
                                      {"consent": "marketing", "state": "opted_in"},
                                      {"status": "active"}]}},
    )


class SegmentOut(Schema):
    id = fields.Integer()
    name = fields.String()
    filter = fields.Dict()
    count = fields.Integer(metadata={"description": "live count of matching contacts"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class FilterIn(Schema):
    filter = fields.Dict(required=True)


class CountOut(Schema):
    count = fields.Integer()


GroupPage = page_schema(GroupOut, "GroupPage")
SegmentPage = page_schema(SegmentOut, "SegmentPage")
