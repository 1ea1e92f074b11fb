"""Segments API: saved filters with live counts."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.auth import requires, workspace_id
from connector.extensions import db
from connector.schemas.audience import CountOut, FilterIn, SegmentIn, SegmentOut, SegmentPage
from connector.schemas.common import PageArgs, paginate
from core import segments
from core.errors import Conflict
from core.models import Segment

blp = Blueprint("segments", __name__, description="Segments: saved filters over contacts")


def _out(segment: Segment) -> dict[str, Any]:
    count = segments.count_matching(db(), segment.workspace_id, segment.filter)
    return {"id": segment.id, "name": segment.name, "filter": segment.filter, "created_at": segment.created_at,
            "updated_at": segment.updated_at, "count": count}


def _save(data: dict[str, Any], segment: Segment | None = None) -> Segment:
    try:
        with db().begin_nested():
            return segments.save_segment(db(), workspace_id(), data["name"], data["filter"], segment)
    except IntegrityError:
        raise Conflict(f"a segment named {data['name']!r} exists") from None


@blp.route("")
class SegmentList(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, SegmentPage)
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        query = select(Segment).where(Segment.workspace_id == workspace_id()).order_by(Segment.id)
        page = paginate(db(), query, args)
        page["items"] = [_out(s) for s in page["items"]]
        return page

    @requires("editor")
    @blp.arguments(SegmentIn)
    @blp.response(201, SegmentOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Save a filter. Conditions: attr, status, consent, tag, group, created, updated; all/any/not."""
        return _out(_save(data))


@blp.route("/count")
class SegmentCount(MethodView):
    @requires("viewer")
    @blp.arguments(FilterIn)
    @blp.response(200, CountOut)
    def post(self, data: dict[str, Any]) -> dict[str, int]:
        """Count the contacts a filter matches, without saving it."""
        return {"count": segments.count_matching(db(), workspace_id(), data["filter"])}


@blp.route("/<int:segment_id>")
class SegmentItem(MethodView):
    @requires("viewer")
    @blp.response(200, SegmentOut)
    def get(self, segment_id: int) -> dict[str, Any]:
        return _out(segments.get_segment(db(), workspace_id(), segment_id))

    @requires("editor")
    @blp.arguments(SegmentIn)
    @blp.response(200, SegmentOut)
    def put(self, data: dict[str, Any], segment_id: int) -> dict[str, Any]:
        return _out(_save(data, segments.get_segment(db(), workspace_id(), segment_id)))

    @requires("editor")
    @blp.response(204)
    def delete(self, segment_id: int) -> None:
        db().delete(segments.get_segment(db(), workspace_id(), segment_id))
