"""Sinch SMS REST (XMS): one batch per message, so each carries its own client reference and callback.

`POST {base}/xms/v1/{service_plan_id}/batches` with `Authorization: Bearer <api_token>`; 201 echoes the batch
and its `id`; errors are `{"code": "...", "text": "..."}`. Delivery reports come per recipient to the
`callback_url` set on each batch (webhooks/inbound/sinch.py).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from marshmallow import Schema, fields, validate

from core.providers.base import OutboundSms, SendResult
from core.providers.http import HttpProvider, describe, json_body

log = logging.getLogger(__name__)

REGIONS = ("us", "eu", "au", "br", "ca")


class SinchSettings(Schema):
    service_plan_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    api_token = fields.String(required=True, validate=validate.Length(min=1), metadata={"secret": True})
    region = fields.String(load_default="eu", validate=validate.OneOf(REGIONS))
    base_url = fields.Url(load_default=None, allow_none=True, require_tld=False)  # tests: the fake's URL
    default_sender = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16))
    callback_secret = fields.String(load_default=None, allow_none=True, metadata={"secret": True})


def msisdn(number: str) -> str:
    """Sinch's documented form of a number: E.164 digits without the '+'."""
    return number[1:] if number.startswith("+") else number


class SinchProvider(HttpProvider):
    name = "sinch"
    settings_schema = SinchSettings

    @property
    def batches_url(self) -> str:
        base = self.settings["base_url"] or f"https://{self.settings['region']}.sms.api.sinch.com"
        return f"{base.rstrip('/')}/xms/v1/{quote(self.settings['service_plan_id'], safe='')}/batches"

    def send_one(self, message: OutboundSms) -> SendResult:
        body: dict[str, object] = {
            "to": [msisdn(message.to)],
            "body": message.text,
            "delivery_report": "per_recipient",
            "callback_url": self.callback_url,
            "client_reference": message.key,
        }
        sender = message.sender or self.settings["default_sender"]
        if sender:
            body["from"] = msisdn(sender)
        response = self.post(self.batches_url, json=body,
                             headers={"Authorization": f"Bearer {self.settings['api_token']}"})
        data = json_body(response)
        if 200 <= response.status_code < 300:
            batch_id = data.get("id") if isinstance(data, dict) else None
            if not batch_id:
                # Accepted but unreadable: do not send again; reports still match by client_reference.
                log.warning("sinch accepted message %s without a readable batch id", message.message_id)
            return SendResult(message.key, True, str(batch_id) if batch_id else None)
        code = data.get("code") if isinstance(data, dict) else None
        return SendResult(message.key, False, error=f"Sinch: {describe(response)}",
                          error_code=str(code or response.status_code))
