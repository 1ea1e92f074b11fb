"""Schemas of the provider accounts API: settings go in as given, come out with every secret masked."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import page_schema
from core.providers import PROVIDERS


class ProviderAccountIn(Schema):
    provider = fields.String(required=True, validate=validate.OneOf(sorted(PROVIDERS)))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    settings = fields.Dict(keys=fields.String(), required=True,
                           metadata={"description": "the provider's settings; see GET /providers/types"})
    is_default = fields.Boolean(load_default=False)


class ProviderAccountPatch(Schema):
    name = fields.String(validate=validate.Length(max=200))
    settings = fields.Dict(keys=fields.String(), metadata={
        "description": "merged into the stored settings; a secret sent back masked keeps its stored value"})
    is_default = fields.Boolean()


class ProviderAccountOut(Schema):
    id = fields.Integer()
    provider = fields.String()
    name = fields.String()
    is_default = fields.Boolean()
    created_at = fields.DateTime()
    settings = fields.Dict(metadata={"description": "secrets masked, e.g. ****a1b2"})
    webhook_url = fields.String(allow_none=True, metadata={
        "description": "where the gateway posts delivery reports (admins only; it embeds the shared secret)"})


ProviderAccountPage = page_schema(ProviderAccountOut, "ProviderAccountPage")


class SettingField(Schema):
    name = fields.String()
    required = fields.Boolean()
    secret = fields.Boolean()


class ProviderType(Schema):
    name = fields.String()
    idempotent = fields.Boolean()
    max_batch = fields.Integer()
    fields_ = fields.List(fields.Nested(SettingField), data_key="fields")
