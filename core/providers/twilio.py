"""Twilio Programmable Messaging: one form-encoded request per message, over the keep-alive session.

`POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic `AccountSid:AuthToken`, fields
`To`, `From` or `MessagingServiceSid`, `Body`, `StatusCallback`. 201 returns the message with its `sid`;
errors are `{"code": 21211, "message": ..., "more_info": ..., "status": 400}`. Twilio has no client reference,
so reports match by `sid` (webhooks/inbound/twilio.py verifies `X-Twilio-Signature`).
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.providers.base import OutboundSms, ProviderAuthFailed, SendResult
from core.providers.http import HttpProvider, describe, json_body

log = logging.getLogger(__name__)

# 4xx codes that fail every message of the account alike, so they stop the campaign instead of
# marking each recipient: 20003 authenticate, 20005 account not active, 21212 invalid From,
# 21603 From missing, 21606 From not owned / not SMS-capable.
ACCOUNT_ERRORS = frozenset({20003, 20005, 21212, 21603, 21606})


class TwilioSettings(Schema):
    account_sid = fields.String(required=True, validate=validate.Regexp(r"^AC[0-9a-fA-F]{32}$"))
    auth_token = fields.String(required=True, validate=validate.Length(min=1), metadata={"secret": True})
    from_ = fields.String(data_key="from", load_default=None, allow_none=True, validate=validate.Length(max=16))
    messaging_service_sid = fields.String(load_default=None, allow_none=True,
                                          validate=validate.Regexp(r"^MG[0-9a-fA-F]{32}$"))
    base_url = fields.Url(load_default=None, allow_none=True, require_tld=False)

    @validates_schema
    def _one_sender(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("from_") and not data.get("messaging_service_sid"):
            raise ValidationError("give 'from' (a Twilio number) or 'messaging_service_sid'", "from")


class TwilioProvider(HttpProvider):
    name = "twilio"
    settings_schema = TwilioSettings

    @property
    def messages_url(self) -> str:
        base = (self.settings["base_url"] or "https://api.twilio.com").rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.settings['account_sid']}/Messages.json"

    def _form(self, message: OutboundSms) -> dict[str, str]:
        form = {"To": message.to, "Body": message.text, "StatusCallback": self.callback_url}
        sender = message.sender or self.settings["from_"]
        if sender:
            form["From"] = sender
        if self.settings["messaging_service_sid"]:
            form["MessagingServiceSid"] = self.settings["messaging_service_sid"]
        return form

    def send_one(self, message: OutboundSms) -> SendResult:
        response = self.post(self.messages_url, data=self._form(message),
                             auth=(self.settings["account_sid"], self.settings["auth_token"]))
        data = json_body(response)
        if 200 <= response.status_code < 300:
            sid = data.get("sid") if isinstance(data, dict) else None
            if not sid:
                log.warning("twilio accepted message %s without a readable sid", message.message_id)
            return SendResult(message.key, True, str(sid) if sid else None)
        code = data.get("code") if isinstance(data, dict) else None
        if isinstance(code, int) and code in ACCOUNT_ERRORS:
            raise ProviderAuthFailed(f"twilio refused the account's request ({code}): {describe(response)}")
        return SendResult(message.key, False, error=f"Twilio: {describe(response)}",
                          error_code=str(code or response.status_code))
