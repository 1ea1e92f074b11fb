"""Twilio status callbacks: form posts verified by `X-Twilio-Signature`, then one report per request.

The signature is base64(HMAC-SHA1(auth token, URL as Twilio called it + every POST field name and value,
sorted by name)). Behind a proxy the URL we see is not the one Twilio called, so the public URL is rebuilt
from SMSCONNECT_BASE_URL; like Twilio's own validator we also accept it with and without the default port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.delivery import Applied, DeliveryReport, map_status
from webhooks.inbound import BadPayload, InboundRequest, text
from webhooks.signing import BadSignature

log = logging.getLogger(__name__)

ALLOW_GET = False
HEADER = "X-Twilio-Signature"
TWIML_OK = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def signature(auth_token: str, url: str, params: Mapping[str, list[str]]) -> str:
    """Twilio's request signature for a URL and its POST fields."""
    payload = url + "".join(name + value for name in sorted(params) for value in sorted(set(params[name])))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        return [url, parts._replace(netloc=host).geturl()]
    default = 443 if parts.scheme == "https" else 80
    return [url, parts._replace(netloc=f"{host}:{default}").geturl()]


def verify(request: InboundRequest, settings: Mapping[str, Any]) -> None:
    given = request.header(HEADER)
    if not given:
        raise BadSignature(f"the {HEADER} header is missing")
    token = str(settings.get("auth_token") or "")
    for url in request.urls:
        params: Mapping[str, list[str]] = request.form
        body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
        if body_hash:  # JSON-bodied webhooks sign the URL only, and the body through this hash
            if not hmac.compare_digest(hashlib.sha256(request.body).hexdigest(), body_hash[0]):
                continue
            params = {}
        if any(hmac.compare_digest(signature(token, variant, params), given) for variant in _port_variants(url)):
            return
    raise BadSignature(f"the {HEADER} does not match")


def parse(request: InboundRequest, settings: Mapping[str, Any]) -> list[DeliveryReport]:
    fields = {key: values[0] for key, values in request.form.items() if values}
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    status = fields.get("MessageStatus") or fields.get("SmsStatus")
    if not sid or not status:
        raise BadPayload("a Twilio status callback needs MessageSid and MessageStatus (form-encoded)")
    code = fields.get("ErrorCode") or None
    ours = map_status("twilio", status, code)
    if ours is None:
        log.info("twilio status %r for %s has no meaning for us; ignored", status, sid)
        return []
    return [DeliveryReport(text(sid, 100), None, ours, text(status, 64), text(code, 32), None,
                           text(fields.get("ErrorMessage"), 500))]


def reply(applied: Applied) -> Any:
    return TWIML_OK, 200, {"Content-Type": "text/xml"}
