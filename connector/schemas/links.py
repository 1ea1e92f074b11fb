"""Short-link schemas: domains, links with their click counts, usage per domain and suffix."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import PageArgs, page_schema
from core.models.links import IDENTITY_MODES


class DomainIn(Schema):
    host = fields.String(required=True, validate=validate.Length(min=1, max=253),
                         metadata={"example": "s.example.com"})
    scheme = fields.String(load_default="https", validate=validate.OneOf(("https", "http")))
    message_limit = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0),
                                   metadata={"description": "messages this domain may carry; null = no limit"})


class DomainPatch(Schema):
    message_limit = fields.Integer(allow_none=True, validate=validate.Range(min=0))
    active = fields.Boolean()


class DomainOut(Schema):
    id = fields.Integer()
    host = fields.String()
    scheme = fields.String()
    message_limit = fields.Integer(allow_none=True)
    messages_used = fields.Integer()
    active = fields.Boolean()
    created_at = fields.DateTime()


class LinkIn(Schema):
    target_url = fields.String(required=True, metadata={"example": "https://shop.example/spring?utm_source=sms"})
    suffix = fields.String(load_default=None, allow_none=True, metadata={"example": "spring-sale"})
    domain_id = fields.Integer(load_default=None, allow_none=True,
                               metadata={"description": "null: the least-used domain of the pool"})
    identity_mode = fields.String(load_default="first", validate=validate.OneOf(IDENTITY_MODES))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                      metadata={"description": "default: now + workspace link_expiry_days (90)"})
    contact_id = fields.Integer(load_default=None, allow_none=True)
    campaign_id = fields.Integer(load_default=None, allow_none=True)


class LinkArgs(PageArgs):
    campaign_id = fields.Integer()
    contact_id = fields.Integer()
    domain_id = fields.Integer()
    suffix = fields.String()


class LinkOut(Schema):
    id = fields.Integer()
    token = fields.String()
    short_url = fields.String()
    target_url = fields.String()
    domain_id = fields.Integer(allow_none=True)
    suffix = fields.String(allow_none=True)
    contact_id = fields.Integer(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    message_id = fields.Integer(allow_none=True)
    variant_id = fields.Integer(allow_none=True)
    identity_mode = fields.String()
    expires_at = fields.DateTime()
    created_at = fields.DateTime()
    clicks = fields.Integer(metadata={"description": "human clicks (bot and preview hits excluded)"})
    unique_clickers = fields.Integer()
    bot_hits = fields.Integer(metadata={"description": "HEAD requests and link-preview / crawler hits"})
    first_click_at = fields.DateTime(allow_none=True)
    last_click_at = fields.DateTime(allow_none=True)


class UsageItem(Schema):
    domain_id = fields.Integer(allow_none=True)
    domain = fields.String(allow_none=True, metadata={"description": "null: the installation's own URL"})
    suffix = fields.String(allow_none=True)
    links = fields.Integer()
    clicks = fields.Integer()
    bot_hits = fields.Integer()


class UsageOut(Schema):
    items = fields.List(fields.Nested(UsageItem))


class IdentityOut(Schema):
    link_id = fields.Integer()
    contact_id = fields.Integer(allow_none=True)
    campaign_id = fields.Integer(allow_none=True)
    message_id = fields.Integer(allow_none=True)


DomainPage = page_schema(DomainOut, "LinkDomainPage")
LinkPage = page_schema(LinkOut, "ShortLinkPage")
