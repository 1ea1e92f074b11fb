"""Contacts API: CRUD, soft delete and restore, GDPR erase and export, consents, CSV export."""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.common import paginate
from connector.schemas.contacts import (
    ConsentPut,
    ContactIn,
    ContactListArgs,
    ContactOut,
    ContactPage,
    ContactPatch,
)
from core import contacts, exports, groups, phones, segments
from core.models import Contact, GroupMember
from core.workspaces import get_workspace

blp = Blueprint("contacts", __name__, description="Contacts: phone numbers in E.164 with attributes and consents")


def _workspace():  # type: ignore[no-untyped-def]
    return get_workspace(db(), workspace_id())


@blp.route("")
class ContactList(MethodView):
    @requires("viewer")
    @blp.arguments(ContactListArgs, location="query")
    @blp.response(200, ContactPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List contacts (filter by status, phone, segment or group)."""
        ws = _workspace()
        query = select(Contact).where(Contact.workspace_id == ws.id).order_by(Contact.id)
        if "status" in args:
            query = query.where(Contact.status == args["status"])
        if "phone" in args:
            query = query.where(Contact.phone == phones.normalize(args["phone"], ws.default_region))
        if "segment_id" in args:
            segment = segments.get_segment(db(), ws.id, args["segment_id"])
            query = query.where(segments.compile_filter(segment.filter, ws.id))
        if "group_id" in args:
            group = groups.get_group(db(), ws.id, args["group_id"])
            query = query.where(Contact.id.in_(select(GroupMember.contact_id).where(GroupMember.group_id == group.id)))
        return paginate(db(), query, args)

    @requires("editor")
    @blp.arguments(ContactIn)
    @blp.response(201, ContactOut)
    def post(self, data: dict[str, Any]) -> Contact:
        """Create a contact; the phone is stored in E.164 and must be unique in the workspace."""
        return contacts.create_contact(db(), _workspace(), data)


@blp.route("/<int:contact_id>")
class ContactItem(MethodView):
    @requires("viewer")
    @blp.response(200, ContactOut)
    def get(self, contact_id: int) -> Contact:
        return contacts.get_contact(db(), workspace_id(), contact_id)

    @requires("editor")
    @blp.arguments(ContactPatch)
    @blp.response(200, ContactOut)
    def patch(self, data: dict[str, Any], contact_id: int) -> Contact:
        """Update; attributes merge, and an attribute set to null is removed."""
        contact = contacts.get_contact(db(), workspace_id(), contact_id)
        return contacts.update_contact(db(), _workspace(), contact, data)

    @requires("editor")
    @blp.response(204)
    def delete(self, contact_id: int) -> None:
        """Soft delete, reversible for the retention period (30 days by default)."""
        contacts.delete_contact(contacts.get_contact(db(), workspace_id(), contact_id))


@blp.route("/<int:contact_id>/restore")
class ContactRestore(MethodView):
    @requires("editor")
    @blp.response(200, ContactOut)
    def post(self, contact_id: int) -> Contact:
        contact = contacts.get_contact(db(), workspace_id(), contact_id)
        contacts.restore_contact(contact, rt().settings.deleted_retention_days)
        return contact


@blp.route("/<int:contact_id>/erase")
class ContactErase(MethodView):
    @requires("editor")
    @blp.response(204)
    def post(self, contact_id: int) -> None:
        """GDPR erase: removes the contact and all its personal data for good."""
        contacts.erase_contact(db(), contacts.get_contact(db(), workspace_id(), contact_id))


@blp.route("/<int:contact_id>/gdpr-export")
class ContactGdprExport(MethodView):
    @requires("viewer")
    @blp.response(200, Schema.from_dict({"contact": fields.Dict(), "groups": fields.List(fields.String()),
                                         "exported_at": fields.String()}, name="GdprExport"))
    def get(self, contact_id: int) -> dict[str, Any]:
        """GDPR export: everything held on one contact, as JSON."""
        return contacts.export_contact(db(), contacts.get_contact(db(), workspace_id(), contact_id))


@blp.route("/<int:contact_id>/consents/<category>")
class ContactConsent(MethodView):
    @requires("editor")
    @blp.arguments(ConsentPut)
    @blp.response(200, ContactOut)
    def put(self, data: dict[str, Any], contact_id: int, category: str) -> Contact:
        """Record opt-in or opt-out for one consent category (marketing, transactional, ...)."""
        contact = contacts.get_contact(db(), workspace_id(), contact_id)
        contacts.set_consent(db(), contact, category, data["opted_in"], data["source"])
        return contact


class ExportArgs(Schema):
    attributes = fields.String(load_default="", metadata={"description": "comma-separated attribute names"})
    segment_id = fields.Integer()
    group_id = fields.Integer()
    include_deleted = fields.Boolean(load_default=False)


@blp.route("/export.csv")
class ContactExport(MethodView):
    @requires("viewer")
    @blp.arguments(ExportArgs, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args: dict[str, Any]) -> Response:
        """Streamed CSV export; cells starting with = + - @ are escaped against formula injection."""
        ws_id = workspace_id()
        tree = segments.get_segment(db(), ws_id, args["segment_id"]).filter if "segment_id" in args else None
        if "group_id" in args:
            groups.get_group(db(), ws_id, args["group_id"])
        names = [a.strip() for a in args["attributes"].split(",") if a.strip()]
        body = exports.export_csv(rt().sessions, ws_id, names, tree, args.get("group_id"), args["include_deleted"])
        return Response(
            stream_with_context(body), mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=contacts.csv"},
        )
