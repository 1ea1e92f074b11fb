"""Price list and content rule schemas: the cost and content-policy side of campaigns."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from connector.schemas.common import PageArgs, page_schema
from core.pricing import MAX_PARTS
from core.rules import KINDS, MAX_VALUE_CHARS

MAX_CHECK_CHARS = 10000

# -- prices -------------------------------------------------------------------------------------------


class PriceArgs(PageArgs):
    provider = fields.String(metadata={"description": "only this provider's prices"})


class PriceIn(Schema):
    # Checked by core (a string or a number, '.' or ',', at most 5 decimals), so the 422 names this field.
    price_per_part = fields.Raw(required=True, metadata={"type": "string", "example": "0.07"})
    currency = fields.String(required=True, metadata={"example": "PLN"})


class PriceOut(Schema):
    id = fields.Integer()
    provider = fields.String()
    prefix = fields.String(metadata={"description": "E.164 digits without '+'; the longest matching prefix wins"})
    price_per_part = fields.Decimal(as_string=True)
    currency = fields.String()
    updated_at = fields.DateTime()


class PriceForm(Schema):
    provider = fields.String(required=True, metadata={"example": "sinch"})


class PriceFile(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


class PriceRowError(Schema):
    line = fields.Integer()
    column = fields.String(allow_none=True)
    value = fields.String(allow_none=True)
    reason = fields.String()


class PriceImportOut(Schema):
    provider = fields.String()
    rows_total = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    failed = fields.Integer()
    errors = fields.List(fields.Nested(PriceRowError), metadata={"description": "the first 1,000 skipped rows"})


class QuoteArgs(Schema):
    provider = fields.String(required=True)
    phone = fields.String(required=True, metadata={"description": "E.164, or national in the workspace region"})
    parts = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PARTS))


class QuoteOut(Schema):
    provider = fields.String()
    phone = fields.String()
    parts = fields.Integer()
    prefix = fields.String(allow_none=True, metadata={"description": "null: no price for this number"})
    price_per_part = fields.Decimal(as_string=True, allow_none=True)
    currency = fields.String(allow_none=True)
    cost = fields.Decimal(as_string=True, allow_none=True)


PricePage = page_schema(PriceOut, "PricePage")

# -- content rules ------------------------------------------------------------------------------------


class RuleArgs(PageArgs):
    kind = fields.String(validate=validate.OneOf(KINDS))


class RuleIn(Schema):
    kind = fields.String(required=True, metadata={"description": " | ".join(KINDS), "example": "word"})
    value = fields.String(required=True, validate=validate.Length(max=MAX_VALUE_CHARS),
                          metadata={"example": "kasyno"})


class RuleOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    value = fields.String()
    created_at = fields.DateTime()


class CheckIn(Schema):
    text = fields.String(required=True, validate=validate.Length(max=MAX_CHECK_CHARS))


class RuleMatchOut(Schema):
    rule_id = fields.Integer(allow_none=True)
    kind = fields.String()
    value = fields.String()
    matched = fields.String()
    snippet = fields.String()
    reason = fields.String()


class CheckOut(Schema):
    match = fields.Nested(RuleMatchOut, allow_none=True, metadata={"description": "null: the text passes"})


RulePage = page_schema(RuleOut, "RulePage")
