"""Campaign schemas."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import PageArgs, page_schema
from core.lifecycle import STATUSES, allowed_actions


class VariantIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    ratio = fields.Integer(validate=validate.Range(min=0, max=100))
    text = fields.String(metadata={"example": "Hi {{ first_name | default('there') }}! -20% today: https://shop.example/sale"})
    languages = fields.Dict(keys=fields.String(), values=fields.String())
    fallback_language = fields.String(allow_none=True)


class AudienceIn(Schema):
    groups = fields.List(fields.Integer())
    segments = fields.List(fields.Integer())
    contact_ids = fields.List(fields.Integer())
    filter = fields.Dict()


class WindowIn(Schema):
    start = fields.String(required=True, metadata={"example": "09:00"})
    end = fields.String(required=True, metadata={"example": "20:00"})


class CampaignIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    tags = fields.List(fields.String(validate=validate.Length(max=100)))
    kind = fields.String(validate=validate.OneOf(["outbound", "two_way"]))
    sender_id = fields.String(allow_none=True, metadata={"description": "up to 11 letters/digits, or E.164"})
    audience = fields.Nested(AudienceIn)
    variants = fields.List(fields.Nested(VariantIn))
    ratios = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "live change of variant ratios: {name: percent}"})
    schedule_at = fields.AwareDateTime(allow_none=True, default_timezone=None,
                                       metadata={"description": "UTC; leave out to send when submitted"})
    throttle_per_hour = fields.Integer()
    max_parts = fields.Integer()
    consent_category = fields.String(allow_none=True)
    budget_cap = fields.Decimal(allow_none=True, as_string=True)
    send_window = fields.Nested(WindowIn, allow_none=True)
    booster = fields.Dict(allow_none=True)
    settings = fields.Dict(metadata={"description": "link_suffix, shorten_links, identity_mode"})
    provider_account_id = fields.Integer(allow_none=True)


class VariantOut(Schema):
    id = fields.Integer()
    name = fields.String()
    ratio = fields.Integer()
    text = fields.String()
    languages = fields.Dict()
    fallback_language = fields.String(allow_none=True)


class CampaignOut(Schema):
    id = fields.Integer()
    name = fields.String()
    tags = fields.List(fields.String())
    kind = fields.String()
    status = fields.String(metadata={"enum": list(STATUSES)})
    status_reason = fields.String(allow_none=True)
    actions = fields.Function(lambda c: allowed_actions(c.status))
    sender_id = fields.String(allow_none=True)
    audience = fields.Dict()
    variants = fields.List(fields.Nested(VariantOut))
    schedule_at = fields.DateTime(allow_none=True)
    throttle_per_hour = fields.Integer()
    max_parts = fields.Integer()
    consent_category = fields.String(allow_none=True)
    budget_cap = fields.Decimal(allow_none=True, as_string=True)
    send_window = fields.Dict(allow_none=True)
    booster = fields.Dict(allow_none=True)
    settings = fields.Dict()
    provider_account_id = fields.Integer(allow_none=True)
    recipients = fields.Integer()
    excluded = fields.Dict()
    estimated_cost = fields.Decimal(allow_none=True, as_string=True)
    currency = fields.String(allow_none=True)
    created_at = fields.DateTime()
    prepared_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class CampaignListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))
    tag = fields.String()


class MessageOut(Schema):
    id = fields.Integer()
    contact_id = fields.Integer(allow_none=True)
    variant_id = fields.Integer(allow_none=True)
    phone = fields.String()
    text = fields.String()
    encoding = fields.String()
    parts = fields.Integer()
    status = fields.String()
    reason = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    provider = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    cost = fields.Decimal(allow_none=True, as_string=True)
    currency = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    status_at = fields.DateTime(allow_none=True)


class MessageListArgs(PageArgs):
    status = fields.String()


CampaignPage = page_schema(CampaignOut, "CampaignPage")
MessagePage = page_schema(MessageOut, "MessagePage")


class _Figures(Schema):
    recipients = fields.Integer()
    waiting = fields.Integer()
    sent = fields.Integer(metadata={"description": "handed to the provider"})
    delivered = fields.Integer()
    failed = fields.Integer(metadata={"description": "undelivered + expired + error"})
    enqueue_failed = fields.Integer(metadata={"description": "not sent: missing variable, over max_parts"})
    statuses = fields.Dict(keys=fields.String(), values=fields.Integer())
    clicked = fields.Integer(metadata={"description": "contacts who clicked (bots excluded)"})
    ctr = fields.Float(metadata={"description": "clicked / delivered"})
    parts = fields.Integer()
    cost = fields.Float()


class VariantReport(_Figures):
    id = fields.Integer()
    name = fields.String()
    ratio = fields.Integer()


class ReportOut(_Figures):
    campaign_id = fields.Integer()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    excluded = fields.Dict(keys=fields.String(), values=fields.Integer())
    excluded_total = fields.Integer()
    estimated_cost = fields.Float()
    currency = fields.String(allow_none=True)
    bot_hits = fields.Integer()
    variants = fields.List(fields.Nested(VariantReport))
