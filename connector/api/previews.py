"""Message previews: POST /api/v1/messages/preview and /api/v1/messages/preview-audience."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from core import contacts, phones, preview
from core.workspaces import get_workspace

blp = Blueprint("previews", __name__, description="Previews: parts, encoding, highlights and cost before sending")
URL_PREFIX = "/api/v1/messages"


class PreviewIn(Schema):
    text = fields.String(required=True)
    contact_id = fields.Integer()
    phone = fields.String(metadata={"description": "price for this number when no contact is given"})
    variables = fields.Dict(keys=fields.String(), load_default=dict)
    max_parts = fields.Integer(load_default=6, validate=validate.Range(min=1, max=8))
    shorten_links = fields.Boolean(load_default=True)
    link_suffix = fields.String(allow_none=True)


class VariantText(Schema):
    text = fields.String(required=True)
    ratio = fields.Integer(load_default=100, validate=validate.Range(min=0, max=100))


class AudiencePreviewIn(Schema):
    text = fields.String()
    variants = fields.List(fields.Nested(VariantText))
    audience = fields.Dict(required=True, metadata={"example": {"segments": [1]}})
    consent_category = fields.String(load_default="marketing", allow_none=True)
    max_parts = fields.Integer(load_default=6, validate=validate.Range(min=1, max=8))
    shorten_links = fields.Boolean(load_default=True)
    link_suffix = fields.String(allow_none=True)


@blp.route("/preview")
class MessagePreview(MethodView):
    @requires("viewer")
    @blp.arguments(PreviewIn)
    @blp.response(200, Schema.from_dict({
        "text": fields.String(), "analysis": fields.Dict(), "highlights": fields.Dict(),
        "suggestion": fields.Dict(allow_none=True), "status": fields.String(), "reason": fields.String(allow_none=True),
        "cost": fields.Dict(allow_none=True)}, name="MessagePreview"))
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """The rendered text for a contact (or given variables), its parts and encoding, the characters that
        force Unicode or cost two units, look-alike replacements that save parts, and the cost."""
        ws = get_workspace(db(), workspace_id())
        variables, phone = dict(data["variables"]), None
        if "contact_id" in data:
            contact = contacts.get_contact(db(), ws.id, data["contact_id"])
            variables = {**contact.attributes, **variables, "phone": contact.phone}
            phone = contact.phone
        elif data.get("phone"):
            phone = phones.normalize(data["phone"], ws.default_region)
        link = preview.sample_link(db(), ws.id, rt().settings.base_url, data.get("link_suffix")) \
            if data["shorten_links"] else None
        variables.setdefault("optout_url", f"{rt().settings.base_url}/u/{'x' * 22}")
        return preview.preview(db(), ws.id, data["text"], variables, phone, data["max_parts"], link,
                               preview.price_book(db(), ws.id))


@blp.route("/preview-audience")
class AudiencePreview(MethodView):
    @requires("viewer")
    @blp.arguments(AudiencePreviewIn)
    @blp.response(200, Schema.from_dict({
        "recipients": fields.Integer(), "excluded": fields.Dict(), "sampled": fields.Boolean(),
        "analysed": fields.Integer(), "parts": fields.Dict(), "encodings": fields.Dict(),
        "enqueue_failed": fields.Integer(), "estimated_cost": fields.String(),
        "currency": fields.String(allow_none=True), "unpriced": fields.Integer()}, name="AudiencePreview"))
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Min/avg/max parts, counts per encoding, how many would fail, and the total estimated cost for an
        audience (exact up to 100,000 recipients; beyond that a sample, and `sampled` says so)."""
        from core import campaigns

        ws = get_workspace(db(), workspace_id())
        spec = campaigns.check_audience(db(), ws.id, data["audience"])
        texts = [(v["text"], v["ratio"]) for v in data.get("variants") or []] or [(data.get("text") or "", 100)]
        link = preview.sample_link(db(), ws.id, rt().settings.base_url, data.get("link_suffix")) \
            if data["shorten_links"] else None
        return preview.preview_audience(db(), ws.id, texts, spec, data["consent_category"], data["max_parts"], link,
                                        preview.price_book(db(), ws.id))
