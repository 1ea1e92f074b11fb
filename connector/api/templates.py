"""Message templates API: CRUD by id, and a preview for a contact or given variables."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.common import paginate
from connector.schemas.templates import TemplateIn, TemplateListArgs, TemplateOut, TemplatePage, TemplatePreviewIn
from core import contacts, templates
from core.models import MessageTemplate

blp = Blueprint("templates", __name__, description="Saved message templates for campaigns, the API and CRMs")


def _get(template_id: int) -> MessageTemplate:
    return templates.get_template(db(), workspace_id(), template_id)


@blp.route("")
class TemplateList(MethodView):
    @requires("viewer")
    @blp.arguments(TemplateListArgs, location="query")
    @blp.response(200, TemplatePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        return paginate(db(), templates.template_query(workspace_id(), args.get("tag"), args.get("name")), args)

    @requires("editor")
    @blp.arguments(TemplateIn)
    @blp.response(201, TemplateOut)
    def post(self, data: dict[str, Any]) -> MessageTemplate:
        """Create a template; its name is unique in the workspace and may be used instead of the id."""
        return templates.create_template(db(), workspace_id(), data)


@blp.route("/<int:template_id>")
class TemplateItem(MethodView):
    @requires("viewer")
    @blp.response(200, TemplateOut)
    def get(self, template_id: int) -> MessageTemplate:
        return _get(template_id)

    @requires("editor")
    @blp.arguments(TemplateIn)
    @blp.response(200, TemplateOut)
    def patch(self, data: dict[str, Any], template_id: int) -> MessageTemplate:
        """Edit; messages already accepted keep the text they were rendered with."""
        return templates.update_template(db(), _get(template_id), data)

    @requires("editor")
    @blp.response(204)
    def delete(self, template_id: int) -> None:
        templates.delete_template(db(), _get(template_id))


@blp.route("/<int:template_id>/preview")
class TemplatePreview(MethodView):
    @requires("viewer")
    @blp.arguments(TemplatePreviewIn)
    @blp.response(200, Schema.from_dict({
        "text": fields.String(), "analysis": fields.Dict(), "highlights": fields.Dict(),
        "suggestion": fields.Dict(allow_none=True), "status": fields.String(), "reason": fields.String(allow_none=True),
        "cost": fields.Dict(allow_none=True)}, name="TemplatePreview"))
    def post(self, data: dict[str, Any], template_id: int) -> dict[str, Any]:
        """The template rendered for a contact (its language version), with parts, encoding and cost."""
        template = _get(template_id)
        contact = contacts.get_contact(db(), workspace_id(), data["contact_id"]) if "contact_id" in data else None
        return templates.preview_template(db(), template, data.get("variables") or {}, contact, rt().settings.base_url)
