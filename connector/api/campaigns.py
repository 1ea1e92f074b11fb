"""Campaigns API: create in steps, edit, submit, pause/resume/abort, duplicate, delete, report, messages."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select, update

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.campaigns import (
    CampaignIn,
    CampaignListArgs,
    CampaignOut,
    CampaignPage,
    MessageListArgs,
    MessagePage,
    ReportOut,
)
from connector.schemas.common import paginate
from core import actions, campaigns, reporting, workspaces
from core.models import Campaign, Contact, Message

blp = Blueprint("campaigns", __name__, description="SMS campaigns and their lifecycle")


def _get(campaign_id: int) -> Campaign:
    return campaigns.get_campaign(db(), workspace_id(), campaign_id)


@blp.route("")
class CampaignList(MethodView):
    @requires("viewer")
    @blp.arguments(CampaignListArgs, location="query")
    @blp.response(200, CampaignPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        query = select(Campaign).where(Campaign.workspace_id == workspace_id()).order_by(Campaign.id.desc())
        if "status" in args:
            query = query.where(Campaign.status == args["status"])
        page = paginate(db(), query, args)
        if "tag" in args:
            page["items"] = [c for c in page["items"] if args["tag"] in (c.tags or [])]
        return page

    @requires("editor")
    @blp.arguments(CampaignIn)
    @blp.response(201, CampaignOut)
    def post(self, data: dict[str, Any]) -> Campaign:
        """Create a Draft; the steps (audience, variants, settings) may come now or in later PATCHes."""
        return campaigns.create_campaign(db(), workspace_id(), data)


@blp.route("/<int:campaign_id>")
class CampaignItem(MethodView):
    @requires("viewer")
    @blp.response(200, CampaignOut)
    def get(self, campaign_id: int) -> Campaign:
        return _get(campaign_id)

    @requires("editor")
    @blp.arguments(CampaignIn)
    @blp.response(200, CampaignOut)
    def patch(self, data: dict[str, Any], campaign_id: int) -> Campaign:
        """Edit a Draft or Rejected campaign; the throttle and variant ratios may change at any time."""
        return actions.tune(rt(), db(), _get(campaign_id), data)

    @requires("editor")
    @blp.response(204)
    def delete(self, campaign_id: int) -> None:
        """Delete in any status (a campaign under way is aborted first)."""
        actions.delete(rt(), db(), _get(campaign_id))


def _action(name: str, doc: str) -> None:
    def post(self: Any, campaign_id: int) -> Campaign:
        return getattr(actions, name)(rt(), db(), _get(campaign_id))  # type: ignore[no-any-return]

    post.__doc__ = doc
    view = type(f"Campaign{name.title()}", (MethodView,), {
        "post": requires("editor")(blp.response(200, CampaignOut)(post))})
    blp.route(f"/<int:campaign_id>/{name}")(view)


_action("submit", "Send (or schedule): Draft → Processing; the audience is frozen and messages prepared.")
_action("pause", "Stop sending within one batch.")
_action("resume", "Continue a Paused or Suspended campaign without gaps or repeats.")
_action("abort", "Stop for good.")


class DuplicateIn(Schema):
    name = fields.String()


@blp.route("/<int:campaign_id>/duplicate")
class CampaignDuplicate(MethodView):
    @requires("editor")
    @blp.arguments(DuplicateIn)
    @blp.response(201, CampaignOut)
    def post(self, data: dict[str, Any], campaign_id: int) -> Campaign:
        """A Draft copy. To copy into another workspace, send that workspace's editor key in
        `X-Target-Workspace-Key`."""
        source = _get(campaign_id)
        target = workspace_id()
        other_key = request.headers.get("X-Target-Workspace-Key")
        if other_key:
            found = workspaces.authenticate(db(), other_key)
            if found is None or not workspaces.role_allows(found.role, "editor"):
                abort(403, message="X-Target-Workspace-Key is not an editor key of the target workspace")
            target = found.workspace_id
        copy = campaigns.duplicate_campaign(db(), source, target)
        if data.get("name"):
            copy.name = data["name"]
        return copy


@blp.route("/<int:campaign_id>/report")
class CampaignReport(MethodView):
    @requires("viewer")
    @blp.response(200, ReportOut)
    def get(self, campaign_id: int) -> dict[str, Any]:
        """Recipients, sent, delivered, failed, clicks, CTR, cost, exclusions per reason, per variant."""
        return reporting.campaign_report(db(), _get(campaign_id))


@blp.route("/<int:campaign_id>/messages")
class CampaignMessages(MethodView):
    @requires("viewer")
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, MessagePage)
    def get(self, args: dict[str, Any], campaign_id: int) -> dict[str, Any]:
        campaign = _get(campaign_id)
        query = select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)
        if "status" in args:
            query = query.where(Message.status == args["status"])
        return paginate(db(), query, args)


@blp.route("/<int:campaign_id>/archive-errors")
class CampaignArchiveErrors(MethodView):
    @requires("editor")
    @blp.response(200, Schema.from_dict({"archived": fields.Integer()}, name="Archived"))
    def post(self, campaign_id: int) -> dict[str, int]:
        """Archive the contacts whose message ended in ERROR, so future campaigns skip them."""
        campaign = _get(campaign_id)
        errored = select(Message.contact_id).where(Message.campaign_id == campaign.id, Message.status == "error")
        result = db().execute(update(Contact).where(
            Contact.workspace_id == campaign.workspace_id, Contact.id.in_(errored), Contact.status == "active",
        ).values(status="archived"))
        return {"archived": int(result.rowcount or 0)}  # type: ignore[attr-defined]
