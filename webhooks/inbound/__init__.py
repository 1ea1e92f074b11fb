"""One module per gateway's delivery reports: `verify(request, settings)` first, then `parse(request, settings)`.

Each module also says how to answer (`reply(applied)`) and whether the gateway calls with GET (`ALLOW_GET`).
A request is handed over as an `InboundRequest`, so verifying and parsing need no Flask.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from types import ModuleType
from typing import Any

from core.delivery import Applied
from webhooks import signing

SIGNATURE_HEADER = "X-Smsconnect-Signature"  # for accounts holding a callback_secret


class BadPayload(Exception):
    """The body is not a delivery report of this gateway (400)."""


@dataclass(frozen=True)
class InboundRequest:
    method: str
    urls: tuple[str, ...]  # the public URL (SMSCONNECT_BASE_URL + path + query) first, then the URL as received
    headers: Mapping[str, str]  # keys lowercased
    body: bytes
    form: Mapping[str, list[str]] = field(default_factory=dict)  # POST form fields
    query: Mapping[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadPayload(f"the body is not JSON: {exc}") from None

    def fields(self) -> dict[str, str]:
        """Query and form fields, first value each, keys lowercased (CM's names vary in case)."""
        return {key.lower(): values[0] for source in (self.query, self.form) for key, values in source.items()
                if values}


def check_callback_secret(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    """For gateways whose shared secret is the URL token: also require our HMAC header when the account
    holds a `callback_secret` (set it when a signing proxy sits in front)."""
    if settings.get("callback_secret"):
        signed = request.body or "&".join(f"{k}={v[0]}" for k, v in sorted(request.query.items()) if v).encode()
        signing.verify(settings["callback_secret"], signed, request.header(SIGNATURE_HEADER))


def parse_time(value: Any) -> datetime | None:
    """A gateway's timestamp (ISO 8601, RFC 2822 or unix seconds) as an aware UTC datetime, or None."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        return _parse_text_time(value)  # the reports of one batch mostly share their time
    return _parse_time(value)


@lru_cache(maxsize=1024)
def _parse_text_time(value: str) -> datetime | None:
    return _parse_time(value)


def _parse_time(value: Any) -> datetime | None:
    when: datetime | None = None
    try:
        if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
            when = datetime.fromtimestamp(float(value), UTC)
        else:
            when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        try:
            when = parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def json_reply(applied: Applied) -> tuple[dict[str, int], int]:
    return {"received": applied.received, "applied": applied.applied, "unknown": applied.unknown}, 200


def text(value: Any, limit: int) -> str | None:
    """A scalar from a payload as bounded text, or None."""
    if type(value) is str:  # the usual case, first
        return value.strip()[:limit] or None
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip()[:limit] or None


def handlers() -> dict[str, ModuleType]:
    from webhooks.inbound import cm, generic, simulator, sinch, twilio

    return {"sinch": sinch, "cm": cm, "twilio": twilio, "generic": generic, "simulator": simulator}
