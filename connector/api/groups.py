"""Groups API: static lists of contacts with live member counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from connector.auth import requires, workspace_id
from connector.extensions import db
from connector.schemas.audience import GroupIn, GroupOut, GroupPage, MembersIn, MembersOut
from connector.schemas.common import PageArgs, paginate
from core import groups
from core.models import Group

blp = Blueprint("groups", __name__, description="Static groups of contacts")


def _out(group: Group) -> dict[str, Any]:
    return {"id": group.id, "name": group.name, "created_at": group.created_at,
            "members": groups.member_count(db(), group.id)}


@blp.route("")
class GroupList(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, GroupPage)
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        page = paginate(db(), select(Group).where(Group.workspace_id == workspace_id()).order_by(Group.id), args)
        page["items"] = [_out(g) for g in page["items"]]
        return page

    @requires("editor")
    @blp.arguments(GroupIn)
    @blp.response(201, GroupOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        return _out(groups.save_group(db(), workspace_id(), data["name"]))


@blp.route("/<int:group_id>")
class GroupItem(MethodView):
    @requires("viewer")
    @blp.response(200, GroupOut)
    def get(self, group_id: int) -> dict[str, Any]:
        return _out(groups.get_group(db(), workspace_id(), group_id))

    @requires("editor")
    @blp.arguments(GroupIn)
    @blp.response(200, GroupOut)
    def patch(self, data: dict[str, Any], group_id: int) -> dict[str, Any]:
        group = groups.get_group(db(), workspace_id(), group_id)
        return _out(groups.save_group(db(), workspace_id(), data["name"], group))

    @requires("editor")
    @blp.response(204)
    def delete(self, group_id: int) -> None:
        db().delete(groups.get_group(db(), workspace_id(), group_id))


@blp.route("/<int:group_id>/members")
class GroupMembers(MethodView):
    @requires("editor")
    @blp.arguments(MembersIn)
    @blp.response(200, MembersOut)
    def post(self, data: dict[str, Any], group_id: int) -> dict[str, int]:
        """Add contacts (ids of this workspace) to the group."""
        group = groups.get_group(db(), workspace_id(), group_id)
        changed = groups.add_members(db(), group, data["contact_ids"])
        return {"changed": changed, "members": groups.member_count(db(), group.id)}

    @requires("editor")
    @blp.arguments(MembersIn)
    @blp.response(200, MembersOut)
    def delete(self, data: dict[str, Any], group_id: int) -> dict[str, int]:
        group = groups.get_group(db(), workspace_id(), group_id)
        changed = groups.remove_members(db(), group, data["contact_ids"])
        return {"changed": changed, "members": groups.member_count(db(), group.id)}
