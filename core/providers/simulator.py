"""The client of our carrier simulator (core/simulator.py): one JSON request per batch, de-duplicated by key."""

from __future__ import annotations

from collections.abc import Sequence

from marshmallow import Schema, fields

from core.providers.base import OutboundSms, SendResult, short
from core.providers.http import HttpProvider, describe, json_body

DEFAULT_URL = "http://127.0.0.1:8026"


class SimulatorSettings(Schema):
    url = fields.Url(load_default=DEFAULT_URL, require_tld=False)
    secret = fields.String(load_default="", metadata={"secret": True})  # bearer for sends; signs its reports


class SimulatorProvider(HttpProvider):
    name = "simulator"
    idempotent = True  # a re-sent key returns the original id and is never delivered twice
    max_batch = 500
    settings_schema = SimulatorSettings

    def send(self, messages: Sequence[OutboundSms]) -> list[SendResult]:
        body = {"callback_url": self.callback_url,
                "messages": [{"key": m.key, "to": m.to, "from": m.sender, "text": m.text} for m in messages]}
        headers = {"Authorization": f"Bearer {self.settings['secret']}"} if self.settings["secret"] else {}
        response = self.post(f"{self.settings['url'].rstrip('/')}/send", json=body, headers=headers)
        data = json_body(response)
        items = data.get("results") if isinstance(data, dict) else None
        if not (200 <= response.status_code < 300) or not isinstance(items, list):
            reason = f"simulator: HTTP {response.status_code}: {describe(response)}"
            return [SendResult(m.key, False, error=reason, error_code=str(response.status_code)) for m in messages]
        by_key = {str(item.get("key")): item for item in items if isinstance(item, dict)}
        return [self._result(m.key, by_key.get(m.key)) for m in messages]

    @staticmethod
    def _result(key: str, item: dict[str, object] | None) -> SendResult:
        if item is None:
            return SendResult(key, False, error="simulator: no result for this message", error_code="missing")
        if item.get("status") == "accepted":
            return SendResult(key, True, str(item.get("id")))
        error = item.get("error")
        if not isinstance(error, dict):
            error = {}
        return SendResult(key, False, error=f"simulator: {short(error.get('message') or 'rejected')}",
                          error_code=str(error.get("code") or "rejected"))
