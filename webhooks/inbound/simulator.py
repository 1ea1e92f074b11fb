"""Our simulator's reports: {"reports": [{"id", "key", "status", "code", "at"}]}, signed X-Simulator-Signature."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from core.delivery import Applied, DeliveryReport, map_status
from webhooks import signing
from webhooks.inbound import BadPayload, InboundRequest, json_reply, parse_time, text

log = logging.getLogger(__name__)

ALLOW_GET = False
HEADER = "X-Simulator-Signature"


def verify(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    signing.verify(str(settings.get("secret") or ""), request.body, request.header(HEADER))


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> list[DeliveryReport]:
    data = request.json()
    items = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BadPayload("expected {\"reports\": [...]}")
    out = []
    for item in items:
        if not isinstance(item, dict) or not (item.get("id") or item.get("key")) or not item.get("status"):
            raise BadPayload("each report needs 'status' and 'id' or 'key'")
        ours = map_status("simulator", item["status"])
        if ours is None:
            raise BadPayload(f"unknown simulator status {item['status']!r}")
        out.append(DeliveryReport(text(item.get("id"), 100), text(item.get("key"), 80), ours,
                                  text(item["status"], 64), text(item.get("code"), 32), parse_time(item.get("at"))))
    return out


def reply(applied: Applied) -> Any:
    return json_reply(applied)
