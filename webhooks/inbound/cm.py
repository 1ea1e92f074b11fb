"""CM.com status reports: GET query (CM's default) or POST form/JSON, flat or wrapped as {"messages": {"msg"}}.

CM has no signature scheme: the unguessable token in the URL (set in the CM portal) is the shared secret,
plus our HMAC header when the account holds a `callback_secret`. Reports match by our `reference`.
Field names are compared case-insensitively; `statuscode` may also come nested as `status.code`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from core.delivery import Applied, DeliveryReport, map_status
from webhooks.inbound import BadPayload, InboundRequest, check_callback_secret, json_reply, parse_time, text

log = logging.getLogger(__name__)

ALLOW_GET = True


def verify(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    check_callback_secret(request, settings)


def _lower(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in item.items()}


def _items(request: InboundRequest) -> list[dict[str, Any]]:
    if request.method == "GET" or request.form:
        return [request.fields()]
    data = request.json()
    if isinstance(data, dict):
        wrapped = _lower(data).get("messages")
        data = _lower(wrapped).get("msg") if isinstance(wrapped, dict) else data
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise BadPayload("expected CM status report objects")
    return [_lower(item) for item in items]


def _report(item: dict[str, Any]) -> DeliveryReport | None:
    status = item.get("status")
    nested = _lower(status) if isinstance(status, dict) else {}
    code = item.get("statuscode", nested.get("code"))
    reference = text(item.get("reference"), 80)
    if code in (None, "") or not reference:
        raise BadPayload("a CM status report needs 'reference' and 'statuscode'")
    ours = map_status("cm", code)
    if ours is None:
        log.info("cm statuscode %r for reference %s has no meaning for us; ignored", code, reference)
        return None
    error_code = item.get("errorcode", nested.get("errorcode"))
    detail = item.get("errordescription", nested.get("errordescription"))
    return DeliveryReport(None, reference, ours, text(code, 64), text(error_code, 32),
                          parse_time(item.get("received") or item.get("sent")), text(detail, 500))


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> list[DeliveryReport]:
    return [r for r in map(_report, _items(request)) if r is not None]


def reply(applied: Applied) -> Any:
    return json_reply(applied)
