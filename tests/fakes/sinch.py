"""Sinch SMS REST (XMS): the batches endpoint, its error bodies, and its delivery-report callbacks."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

PLAN = "f3a9c0d2e1b84d5f9a7c6b5e4d3c2b1a"
TOKEN = "sinch-api-token-7f3e2d1c0b9a"
_ids = count(1)


def batches_path(plan: str = PLAN) -> str:
    return f"/xms/v1/{plan}/batches"


def settings(server: HTTPServer, **extra: Any) -> dict[str, Any]:
    return {"service_plan_id": PLAN, "api_token": TOKEN, "region": "eu", "base_url": server.url_for(""), **extra}


def batch_id() -> str:
    return f"01FC66621XXXXX119Z8PMV{next(_ids):04d}"


def created(request: Request) -> Response:
    """201 echoing the batch, as Sinch does."""
    body = request.get_json()
    batch = {"id": batch_id(), "to": body["to"], "from": body.get("from"), "canceled": False, "body": body["body"],
             "type": "mt_text", "created_at": "2024-06-06T08:17:19.210Z", "modified_at": "2024-06-06T08:17:19.210Z",
             "delivery_report": body.get("delivery_report", "none"), "expire_at": "2024-06-09T08:17:19.210Z",
             "callback_url": body.get("callback_url"), "client_reference": body.get("client_reference"),
             "flash_message": False}
    return Response(json.dumps(batch), status=201, content_type="application/json")


def error(code: str, text: str, status: int = 400) -> Response:
    return Response(json.dumps({"code": code, "text": text}), status=status, content_type="application/json")


def recipient_report(batch: str, status: str, code: int = 0, client_reference: str | None = None,
                     recipient: str = "48600100200") -> dict[str, Any]:
    report = {"type": "recipient_delivery_report_sms", "batch_id": batch, "recipient": recipient, "code": code,
              "status": status, "at": "2024-06-06T08:17:19.210Z", "operator_status_at": "2024-06-06T08:17:00Z",
              "applied_originator": "MyBrand", "encoding": "GSM", "number_of_message_parts": 1}
    if client_reference:
        report["client_reference"] = client_reference
    return report


def summary_report(batch: str, status: str, code: int = 0) -> dict[str, Any]:
    return {"type": "delivery_report_sms", "batch_id": batch, "total_message_count": 1,
            "statuses": [{"code": code, "status": status, "count": 1, "recipients": ["48600100200"]}]}
