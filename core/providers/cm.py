"""CM.com Business Messaging: up to `max_batch` messages in one JSON request, correlated by our reference.

`POST {base}/v1.0/message` with the product token inside the body. CM returns no message id: each message's
`reference` is our idempotency key, and delivery reports carry it back. CM has no per-message callback URL:
the admin sets the status-report URL in the CM portal (Gateway → Status report webhook) to the account's
`webhook_url` from `/api/v1/providers`, as a GET or a JSON POST (webhooks/inbound/cm.py reads both).

Request-level `errorCode`s (CM's list): 101 authentication failed, 102 insufficient balance, 103 product
token incorrect (all fatal for the account); 201 some messages have errors (read each message's
`messageErrorCode`); 202/203 malformed request; 500 internal error (retriable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marshmallow import Schema, fields, validate

from core.providers.base import OutboundSms, ProviderAuthFailed, ProviderUnavailable, SendResult, short
from core.providers.http import HttpProvider, describe, json_body

ACCOUNT_ERRORS = {101: "authentication failed", 102: "insufficient balance", 103: "product token incorrect"}
MAX_PARTS = 8  # CM's own limit for one concatenated message


class CmSettings(Schema):
    product_token = fields.String(required=True, validate=validate.Length(min=1), metadata={"secret": True})
    base_url = fields.Url(load_default=None, allow_none=True, require_tld=False)
    default_sender = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))
    callback_secret = fields.String(load_default=None, allow_none=True, metadata={"secret": True})


def _get(item: dict[str, Any], name: str) -> Any:
    """CM's key names are case-insensitive in practice (`msg` and `Msg` both appear)."""
    for key, value in item.items():
        if key.lower() == name.lower():
            return value
    return None


class CmProvider(HttpProvider):
    name = "cm"
    settings_schema = CmSettings

    @property
    def message_url(self) -> str:
        return f"{(self.settings['base_url'] or 'https://gw.messaging.cm.com').rstrip('/')}/v1.0/message"

    def _msg(self, message: OutboundSms) -> dict[str, Any]:
        return {
            "from": message.sender or self.settings["default_sender"] or "",
            "to": [{"number": message.to}],
            "body": {"type": "auto", "content": message.text},
            "reference": message.key,
            "minimumNumberOfMessageParts": 1,
            "maximumNumberOfMessageParts": max(MAX_PARTS, message.parts),
        }

    def send(self, messages: Sequence[OutboundSms]) -> list[SendResult]:
        body = {"messages": {"authentication": {"producttoken": self.settings["product_token"]},
                             "msg": [self._msg(m) for m in messages]}}
        response = self.post(self.message_url, json=body)
        data = json_body(response)
        if not isinstance(data, dict):
            if 200 <= response.status_code < 300:
                return [SendResult(m.key, True) for m in messages]  # accepted; reports match by reference
            return [SendResult(m.key, False, error=f"CM: {describe(response)}",
                               error_code=str(response.status_code)) for m in messages]
        code = _int(_get(data, "errorCode"))
        details = short(_get(data, "details") or describe(response))
        if code in ACCOUNT_ERRORS:
            raise ProviderAuthFailed(f"cm: {ACCOUNT_ERRORS[code]} (errorCode {code}): {details}")
        if code == 500 or response.status_code >= 500:
            raise ProviderUnavailable(f"cm: internal error (errorCode {code}): {details}")
        items = _get(data, "messages")
        by_reference = {str(_get(item, "reference")): item for item in (items if isinstance(items, list) else [])
                        if isinstance(item, dict)}
        whole_ok = code == 0 and 200 <= response.status_code < 300
        error_code = str(code or response.status_code)
        return [self._result(m, by_reference.get(m.key), whole_ok, error_code, details) for m in messages]

    @staticmethod
    def _result(message: OutboundSms, item: dict[str, Any] | None, whole_ok: bool, code: str,
                details: str) -> SendResult:
        if item is None:
            if whole_ok:
                return SendResult(message.key, True)
            return SendResult(message.key, False, error=f"CM: {details}", error_code=code)
        item_code = _int(_get(item, "messageErrorCode"))
        status = str(_get(item, "status") or "").lower()
        if item_code == 0 and status in ("accepted", ""):
            return SendResult(message.key, True)
        reason = _get(item, "messageDetails") or f"{status or 'rejected'} (messageErrorCode {item_code})"
        return SendResult(message.key, False, error=f"CM: {short(reason)}",
                          error_code=str(item_code) if item_code else code)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
