"""Sinch delivery reports: per-recipient (`recipient_delivery_report_sms`) or summary (`delivery_report_sms`).

Sinch does not sign SMS callbacks by default: the unguessable token in the URL is the shared secret, plus
our HMAC header when the account holds a `callback_secret`. Sinch retries on 5xx and 429 only, so anything
we cannot use is answered 2xx (unknown ids) or 400 (not a report at all).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from core.delivery import Applied, DeliveryReport, map_status
from webhooks.inbound import BadPayload, InboundRequest, check_callback_secret, json_reply, parse_time, text

log = logging.getLogger(__name__)

ALLOW_GET = False
PER_RECIPIENT = ("recipient_delivery_report_sms", "recipient_delivery_report_mms")
SUMMARY = ("delivery_report_sms", "delivery_report_mms")


def verify(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    check_callback_secret(request, settings)


def _report(batch_id: str | None, reference: str | None, status: Any, code: Any, at: Any) -> DeliveryReport | None:
    ours = map_status("sinch", status)
    if ours is None:
        log.info("sinch status %r of batch %s has no meaning for us; ignored", status, batch_id)
        return None
    return DeliveryReport(batch_id, reference, ours, text(status, 64), text(code, 32), parse_time(at))


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> list[DeliveryReport]:
    data = request.json()
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadPayload("expected a Sinch callback object with a 'type'")
    kind = data["type"]
    batch_id, reference = text(data.get("batch_id"), 100), text(data.get("client_reference"), 80)
    if kind in PER_RECIPIENT:
        if "status" not in data or not (batch_id or reference):
            raise BadPayload("a recipient delivery report needs 'status' and 'batch_id'")
        found = _report(batch_id, reference, data["status"], data.get("code"), data.get("at"))
        return [found] if found else []
    if kind in SUMMARY:
        statuses = data.get("statuses")
        if not isinstance(statuses, list) or not batch_id:
            raise BadPayload("a summary delivery report needs 'batch_id' and a 'statuses' list")
        out: list[DeliveryReport | None] = []
        for entry in statuses:
            if not isinstance(entry, dict):
                raise BadPayload("each entry of 'statuses' must be an object")
            # One batch holds one of our messages, so every recipient of an entry names the same message.
            out.append(_report(batch_id, reference, entry.get("status"), entry.get("code"), None))
        return [r for r in out if r is not None]
    if kind.startswith("mo_"):
        log.info("sinch inbound message posted to a delivery-report URL; ignored")
        return []
    raise BadPayload(f"unknown Sinch callback type {kind!r}")


def reply(applied: Applied) -> Any:
    return json_reply(applied)
