"""A generic HTTP JSON gateway: configurable URL, auth header, body template and the id's path in the reply.

The body template is JSON text whose strings may hold placeholders: `{{to}}`, `{{from}}`, `{{text}}`,
`{{key}}` (and `{{callback_url}}`, `{{parts}}`, `{{message_id}}`). A string that is exactly one placeholder
becomes that value as a JSON value (`"{{parts}}"` → `2`, `"{{from}}"` → `null` without a sender); inside a
longer string the value is inserted as text. The template is parsed once and filled as data, then
serialised, so a message text can never break out of its string.

Example: `{"recipient": "{{to}}", "message": "{{text}}", "ref": "{{key}}", "notify": "{{callback_url}}"}`
with `id_path` `data.id` (dotted; numbers index lists: `messages.0.id`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from core.providers.base import OutboundSms, SendResult
from core.providers.http import HttpProvider, describe, json_body

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{\s*(to|from|text|key|callback_url|parts|message_id)\s*\}\}")


def fill(template: Any, values: dict[str, Any]) -> Any:
    """The parsed template with every placeholder replaced (see the module docstring)."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: "" if values[m.group(1)] is None else str(values[m.group(1)]), template)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (`data.id`, `messages.0.id`), or None when any step is missing."""
    for step in path.split("."):
        if isinstance(data, dict):
            data = data.get(step)
        elif isinstance(data, list) and step.isdigit() and int(step) < len(data):
            data = data[int(step)]
        else:
            return None
    return data


class GenericSettings(Schema):
    url = fields.Url(required=True, require_tld=False)
    auth_header = fields.String(load_default="Authorization", validate=validate.Length(min=1, max=100))
    auth_value = fields.String(load_default=None, allow_none=True, metadata={"secret": True})
    body_template = fields.String(required=True)
    id_path = fields.String(load_default="id", validate=validate.Length(min=1, max=200))
    success_statuses = fields.List(fields.Integer(validate=validate.Range(200, 299)),
                                   load_default=lambda: [200, 201, 202], validate=validate.Length(min=1))
    status_map = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)  # theirs → ours
    callback_secret = fields.String(load_default=None, allow_none=True, metadata={"secret": True})

    @validates("body_template")
    def _template(self, value: str, **_: Any) -> None:
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"not valid JSON ({exc}); put placeholders inside strings: \"{{{{to}}}}\"") \
                from None
        used = {m.group(1) for m in PLACEHOLDER.finditer(json.dumps(parsed))}
        if not {"to", "text"} <= used:
            raise ValidationError("must use the placeholders {{to}} and {{text}}")


class GenericProvider(HttpProvider):
    name = "generic"
    settings_schema = GenericSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = json.loads(self.settings["body_template"])

    def send_one(self, message: OutboundSms) -> SendResult:
        values = {"to": message.to, "from": message.sender, "text": message.text, "key": message.key,
                  "callback_url": self.callback_url, "parts": message.parts, "message_id": message.message_id}
        headers = {}
        if self.settings["auth_value"]:
            headers[self.settings["auth_header"]] = self.settings["auth_value"]
        response = self.post(self.settings["url"], json=fill(self.template, values), headers=headers)
        if response.status_code in self.settings["success_statuses"]:
            found = dig(json_body(response), self.settings["id_path"])
            if found is None or isinstance(found, dict | list):
                log.warning("generic provider accepted message %s; no id at %r", message.message_id,
                            self.settings["id_path"])
                return SendResult(message.key, True)
            return SendResult(message.key, True, str(found))
        return SendResult(message.key, False, error=f"HTTP {response.status_code}: {describe(response)}",
                          error_code=str(response.status_code))
