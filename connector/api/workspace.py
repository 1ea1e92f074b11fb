"""The caller's workspace: name, default phone region, time zone, settings."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from connector.auth import requires, workspace_id
from connector.extensions import db
from core import workspaces
from core.models import Workspace

blp = Blueprint("workspace", __name__, description="The workspace the API key belongs to")


class WorkspaceOut(Schema):
    id = fields.Integer()
    name = fields.String()
    default_region = fields.String()
    timezone = fields.String()
    settings = fields.Dict()
    created_at = fields.DateTime()


class WorkspacePatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    default_region = fields.String(validate=validate.Length(equal=2))
    timezone = fields.String()
    settings = fields.Dict()


@blp.route("")
class WorkspaceItem(MethodView):
    @requires("viewer")
    @blp.response(200, WorkspaceOut)
    def get(self) -> Workspace:
        return workspaces.get_workspace(db(), workspace_id())

    @requires("admin")
    @blp.arguments(WorkspacePatch)
    @blp.response(200, WorkspaceOut)
    def patch(self, data: dict[str, Any]) -> Workspace:
        return workspaces.update_workspace(db(), workspaces.get_workspace(db(), workspace_id()), data)
