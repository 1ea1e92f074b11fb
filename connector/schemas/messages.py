"""Transactional message schemas: what POST /messages takes and answers, listings and one message's history."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import PageArgs, page_schema
from core.messaging import MAX_ITEMS
from core.models.messages import MESSAGE_STATUSES


class ExternalRef(Schema):
    source = fields.String(required=True, metadata={"example": "salesforce"})
    id = fields.String(required=True, metadata={"example": "003Ak00000XyZ12"})


class MessageIn(Schema):
    """One message: a recipient (`to`, `contact_id` or `external_id`) and `text` or `template` + `variables`."""

    to = fields.String(metadata={"description": "a phone number in any common form", "example": "+48 600 100 200"})
    contact_id = fields.Integer()
    external_id = fields.Nested(ExternalRef)
    text = fields.String(metadata={"example": "Your code is {{ code }}"})
    template = fields.Raw(metadata={"description": "template id or name", "example": "otp"})
    variables = fields.Dict(metadata={"example": {"code": "123456"}})
    sender = fields.String(metadata={"description": "up to 11 letters/digits, or E.164"})
    consent_category = fields.String()
    send_at = fields.AwareDateTime(metadata={"description": "schedule (ISO 8601 with zone); not in the past"})
    validity = fields.Integer(metadata={"description": "seconds a message may wait before it expires"})
    reference = fields.String(metadata={"description": "your own id, stored and returned"})
    tags = fields.List(fields.String())
    shorten_links = fields.Boolean(load_default=True)


class SendIn(Schema):
    """A list of messages; the body may also be one message object, or a bare JSON list."""

    messages = fields.List(fields.Nested(MessageIn), validate=validate.Length(min=1, max=MAX_ITEMS))
    create_contacts = fields.Boolean(load_default=True,
                                     metadata={"description": "unknown numbers become contacts (source api)"})


class ResultOut(Schema):
    index = fields.Integer()
    id = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": ["accepted", "enqueue_failed"]})
    reason = fields.String(allow_none=True)
    field = fields.String(allow_none=True, metadata={"description": "the bad field of an item that was not stored"})
    to = fields.String(allow_none=True)
    encoding = fields.String(allow_none=True)
    parts = fields.Integer()
    cost = fields.String(allow_none=True, metadata={"description": "estimated, from the price list"})
    currency = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)


class SendOut(Schema):
    messages = fields.List(fields.Nested(ResultOut))
    accepted = fields.Integer()
    failed = fields.Integer()


class OutgoingMessageOut(Schema):
    id = fields.Integer()
    campaign_id = fields.Integer(allow_none=True)
    template_id = fields.Integer(allow_none=True)
    contact_id = fields.Integer(allow_none=True)
    phone = fields.String()
    sender = fields.String(allow_none=True)
    text = fields.String()
    encoding = fields.String()
    parts = fields.Integer()
    status = fields.String(metadata={"enum": list(MESSAGE_STATUSES)})
    reason = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    reference = fields.String(allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    consent_category = fields.String(allow_none=True)
    validity_s = fields.Integer(allow_none=True)
    source = fields.String(allow_none=True)
    provider = fields.String(allow_none=True)
    provider_message_id = fields.String(allow_none=True)
    cost = fields.Decimal(allow_none=True, as_string=True)
    currency = fields.String(allow_none=True)
    send_after = fields.DateTime(allow_none=True, data_key="send_at")
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    status_at = fields.DateTime(allow_none=True)


class EventOut(Schema):
    status = fields.String()
    provider_status = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    at = fields.DateTime()
    detail = fields.String(allow_none=True)


class ClickOut(Schema):
    url = fields.String()
    at = fields.DateTime()
    bot = fields.Boolean()


class MessageDetailOut(Schema):
    message = fields.Nested(OutgoingMessageOut)
    events = fields.List(fields.Nested(EventOut))
    clicks = fields.List(fields.Nested(ClickOut))
    replies = fields.List(fields.Dict(), metadata={"description": "incoming replies (with two-way messaging)"})


class MessageFilters(Schema):
    status = fields.String(validate=validate.OneOf(MESSAGE_STATUSES))
    to = fields.String(metadata={"description": "recipient number"})
    sender = fields.String()
    reference = fields.String()
    tag = fields.String()
    campaign_id = fields.Integer()
    contact_id = fields.Integer()
    transactional = fields.Boolean(metadata={"description": "only messages sent through this API"})
    since = fields.AwareDateTime(default_timezone=None)
    until = fields.AwareDateTime(default_timezone=None)


class MessageListArgs(PageArgs, MessageFilters):
    pass


MessagePage = page_schema(OutgoingMessageOut, "OutgoingMessagePage")
