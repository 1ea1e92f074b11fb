"""CM.com Business Messaging: the JSON gateway, its request-level and per-message errors, status reports."""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

PRODUCT_TOKEN = "5d1c3e9a-8b7f-4a2e-9c6d-0e1f2a3b4c5d"
PATH = "/v1.0/message"


def settings(server: HTTPServer, **extra: Any) -> dict[str, Any]:
    return {"product_token": PRODUCT_TOKEN, "base_url": server.url_for(""), **extra}


def _item(msg: dict[str, Any], error_code: int = 0, details: str | None = None) -> dict[str, Any]:
    return {"to": msg["to"][0]["number"], "status": "Rejected" if error_code else "Accepted",
            "reference": msg["reference"], "parts": 1, "messageDetails": details, "messageErrorCode": error_code}


def gateway(bad_numbers: frozenset[str] = frozenset()) -> Any:
    """A handler: accepts every message, or rejects those to `bad_numbers` with errorCode 201 / 303."""

    def handle(request: Request) -> Response:
        msgs = request.get_json()["messages"]["msg"]
        items = [_item(m, 303, f"Gsm '{m['to'][0]['number']}' is not a number.")
                 if m["to"][0]["number"] in bad_numbers else _item(m) for m in msgs]
        rejected = sum(1 for i in items if i["messageErrorCode"])
        if rejected:
            body = {"details": "Request has one or more errors in its messages.", "errorCode": 201, "messages": items}
            return Response(json.dumps(body), status=400, content_type="application/json")
        body = {"details": f"Created {len(items)} message(s)", "errorCode": 0, "messages": items}
        return Response(json.dumps(body), status=200, content_type="application/json")

    return handle


def auth_failed() -> dict[str, Any]:
    return {"details": "Authentication of the request failed", "errorCode": 101, "messages": []}


def status_report(reference: str, statuscode: int, errorcode: str = "", description: str = "") -> dict[str, str]:
    """The flat fields of a status report (GET query, or the body of the JSON variant)."""
    return {"sent": "2024-06-06T08:17:00", "received": "2024-06-06T08:17:19", "to": "0048600100200",
            "reference": reference, "statuscode": str(statuscode), "errorcode": errorcode,
            "errordescription": description}
