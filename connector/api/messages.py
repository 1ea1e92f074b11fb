"""Transactional messages: POST one or up to 1,000 (Idempotency-Key aware), follow one, list, export, cancel."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from connector.auth import requires, workspace_id
from connector.errors import body as error_body
from connector.extensions import db, rt
from connector.schemas.common import paginate
from connector.schemas.messages import (
    MessageDetailOut,
    MessageFilters,
    MessageListArgs,
    MessagePage,
    OutgoingMessageOut,
    SendIn,
    SendOut,
)
from core import messaging, outgoing, phones
from core.errors import InvalidPhone
from core.models import Message, Workspace

blp = Blueprint("messages", __name__, description="Transactional SMS: send now, follow, list, export, cancel")


def _items(payload: Any) -> tuple[list[Any], bool, bool]:
    """(items, create_contacts, given as a list) from a bare list, {"messages": [...]} or one message."""
    if isinstance(payload, list):
        return payload, True, True
    if not isinstance(payload, dict):
        abort(422, message="the body must be a JSON object or list", errors={"json": {"_schema": ["not an object"]}})
    if "messages" in payload:
        create = payload.get("create_contacts", True)
        if not isinstance(payload["messages"], list) or not isinstance(create, bool):
            abort(422, message="messages must be a list and create_contacts true or false",
                  errors={"json": {"messages": ["must be a list of messages"]}})
        return payload["messages"], create, True
    return [payload], True, False


@blp.route("")
class MessageList(MethodView):
    @requires("viewer")
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, MessagePage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Outgoing messages (campaign and transactional), newest first, with filters."""
        return paginate(db(), outgoing.message_query(workspace_id(), _filters(args)), args)

    @requires("editor")
    @blp.doc(requestBody={"content": {"application/json": {"schema": SendIn}}},
             parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"},
                          "description": "the same key and body within 24 h get the first answer, sent once"}])
    @blp.response(202, SendOut)
    def post(self) -> Any:
        """Send one message or a list of up to 1,000. Per message: our id, `accepted` or `enqueue_failed` with
        the reason, encoding, parts and estimated cost. Items with bad input are named by index and field; the
        others are still accepted. 422 when nothing in the request is valid input, 413 over 1,000."""
        payload = request.get_json(silent=True)
        if payload is None:
            abort(400, message="the body is not JSON (send Content-Type: application/json)")
        items, create, as_list = _items(payload)
        try:
            results = messaging.accept_messages(rt(), db(), workspace_id(), items, create_contacts=create,
                                                idempotency_key=request.headers.get("Idempotency-Key"))
        except messaging.TooManyMessages as exc:
            abort(413, message=str(exc))
        if all(r["field"] for r in results):
            return _invalid(results, as_list)
        failed = sum(1 for r in results if r["status"] != "accepted")
        return {"messages": results, "accepted": len(results) - failed, "failed": failed}


def _invalid(results: list[dict[str, Any]], as_list: bool) -> Any:
    """422 naming each bad field (by item index in a list)."""
    if as_list:
        errors = {"messages": {str(r["index"]): {r["field"]: [r["reason"]]} for r in results}}
    else:
        errors = {results[0]["field"]: [results[0]["reason"]]}
    first = results[0]
    prefix = f"messages[{first['index']}]." if as_list else ""
    return jsonify(error_body(422, f"{prefix}{first['field']}: {first['reason']}", {"json": errors})), 422


def _filters(args: dict[str, Any]) -> dict[str, Any]:
    if args.get("to"):
        ws = db().get(Workspace, workspace_id())
        try:
            args["to"] = phones.normalize(args["to"], ws.default_region if ws else "PL", field="to")
        except InvalidPhone:
            pass  # matches nothing
    return args


@blp.route("/export.csv")
class MessageExport(MethodView):
    @requires("viewer")
    @blp.arguments(MessageFilters, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args: dict[str, Any]) -> Response:
        """Streamed CSV of outgoing messages with the same filters; formula-like cells are escaped."""
        body = outgoing.export_csv(rt().sessions, workspace_id(), _filters(args))
        return Response(stream_with_context(body), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=messages.csv"})


@blp.route("/<int:message_id>")
class MessageItem(MethodView):
    @requires("viewer")
    @blp.response(200, MessageDetailOut)
    def get(self, message_id: int) -> dict[str, Any]:
        """Status, every status event with its time and provider code, parts, cost, clicks, replies."""
        return outgoing.message_detail(db(), outgoing.get_message(db(), workspace_id(), message_id))

    @requires("editor")
    @blp.response(200, OutgoingMessageOut)
    def delete(self, message_id: int) -> Message:
        """Cancel a message that is still scheduled; 409 once it has gone to the provider."""
        return outgoing.cancel_message(db(), outgoing.get_message(db(), workspace_id(), message_id))

