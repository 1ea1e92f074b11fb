"""API keys of the caller's workspace (admin only). A new key's secret is shown once."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from connector.auth import requires, workspace_id
from connector.extensions import db
from connector.schemas.common import PageArgs, page_schema, paginate
from core import workspaces
from core.models import ApiKey
from core.models.workspace import ROLES

blp = Blueprint("keys", __name__, description="API keys (admin role)")


class KeyIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(load_default="", validate=validate.Length(max=200))


class KeyOut(Schema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    prefix = fields.String()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class NewKeyOut(KeyOut):
    key = fields.String(metadata={"description": "the secret; shown only in this response"})


@blp.route("")
class KeyList(MethodView):
    @requires("admin")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(KeyOut, "KeyPage"))
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        return paginate(db(), select(ApiKey).where(ApiKey.workspace_id == workspace_id()).order_by(ApiKey.id), args)

    @requires("admin")
    @blp.arguments(KeyIn)
    @blp.response(201, NewKeyOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        key, secret = workspaces.create_key(db(), workspace_id(), data["role"], data["name"])
        return {**{f: getattr(key, f) for f in KeyOut().fields}, "key": secret}


@blp.route("/<int:key_id>")
class KeyItem(MethodView):
    @requires("admin")
    @blp.response(204)
    def delete(self, key_id: int) -> None:
        """Revoke a key; it stops working at once."""
        workspaces.revoke_key(db(), workspace_id(), key_id)
