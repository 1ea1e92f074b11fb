"""Generic HTTP gateway reports: a JSON object, a list of them, or {"reports": [...]}.

Each report names the message by `id` (our stored provider id; also `message_id`) or by `key` (our
idempotency key; also `reference`), and gives `status` (mapped by the account's `status_map`, then our
names and SMPP words), optional `code`, `at`, `detail`. Shared secret: the URL token, plus our HMAC header
when the account holds a `callback_secret`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from core.delivery import Applied, DeliveryReport, map_status
from webhooks.inbound import BadPayload, InboundRequest, check_callback_secret, json_reply, parse_time, text

log = logging.getLogger(__name__)

ALLOW_GET = False


def verify(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    check_callback_secret(request, settings)


def _first(item: Mapping[str, Any], *names: str) -> Any:
    return next((item[name] for name in names if item.get(name) not in (None, "")), None)


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> list[DeliveryReport]:
    data = request.json()
    items = data.get("reports", [data]) if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadPayload("expected a report object, a list of them, or {\"reports\": [...]}")
    out = []
    for item in items:
        ref_id = text(_first(item, "id", "message_id", "provider_message_id"), 100)
        key = text(_first(item, "key", "reference", "client_reference"), 80)
        status = _first(item, "status", "state")
        if status is None or not (ref_id or key):
            raise BadPayload("each report needs 'status' and 'id' or 'key'")
        ours = map_status("generic", status, custom=settings.get("status_map"))
        if ours is None:
            log.info("generic status %r has no mapping (set status_map); ignored", status)
            continue
        out.append(DeliveryReport(ref_id, key, ours, text(status, 64), text(_first(item, "code", "error_code"), 32),
                                  parse_time(_first(item, "at", "timestamp")),
                                  text(_first(item, "detail", "error", "description"), 500)))
    return out


def reply(applied: Applied) -> Any:
    return json_reply(applied)
