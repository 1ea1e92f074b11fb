"""Message template schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from connector.schemas.common import PageArgs, page_schema


class TemplateIn(Schema):
    name = fields.String(metadata={"example": "otp"})
    text = fields.String(metadata={"example": "Your code is {{ code }}. It expires in 10 minutes."})
    languages = fields.Dict(keys=fields.String(), values=fields.String(),
                            metadata={"example": {"en": "Your code is {{ code }}."}})
    fallback_language = fields.String(allow_none=True)
    sender_id = fields.String(allow_none=True)
    consent_category = fields.String(allow_none=True)
    max_parts = fields.Integer()
    tags = fields.List(fields.String())


class TemplateOut(Schema):
    id = fields.Integer()
    name = fields.String()
    text = fields.String()
    languages = fields.Dict()
    fallback_language = fields.String(allow_none=True)
    sender_id = fields.String(allow_none=True)
    consent_category = fields.String(allow_none=True)
    max_parts = fields.Integer()
    tags = fields.List(fields.String())
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TemplateListArgs(PageArgs):
    name = fields.String(metadata={"description": "part of the name"})
    tag = fields.String()


class TemplatePreviewIn(Schema):
    contact_id = fields.Integer(metadata={"description": "render with this contact's attributes"})
    variables = fields.Dict(metadata={"description": "values that win over the contact's attributes"})


TemplatePage = page_schema(TemplateOut, "TemplatePage")
