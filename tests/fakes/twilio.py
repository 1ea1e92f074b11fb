"""Twilio Messages API: created messages, error bodies, status callbacks, and an independent signer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from itertools import count
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

ACCOUNT_SID = "AC" + "3f" * 16
AUTH_TOKEN = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
FROM = "+15005550006"
_sids = count(1)


def messages_path(sid: str = ACCOUNT_SID) -> str:
    return f"/2010-04-01/Accounts/{sid}/Messages.json"


def settings(server: HTTPServer, **extra: Any) -> dict[str, Any]:
    return {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM, "base_url": server.url_for(""),
            **extra}


def created(request: Request) -> Response:
    form = request.form
    sid = f"SM{next(_sids):032x}"
    body = {"sid": sid, "status": "queued", "to": form["To"], "from": form.get("From"), "body": form["Body"],
            "num_segments": "1", "num_media": "0", "direction": "outbound-api", "api_version": "2010-04-01",
            "error_code": None, "error_message": None, "account_sid": ACCOUNT_SID,
            "messaging_service_sid": form.get("MessagingServiceSid"), "price": None, "price_unit": "USD",
            "date_created": "Wed, 01 May 2024 10:15:30 +0000", "date_sent": None, "date_updated": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"}
    return Response(json.dumps(body), status=201, content_type="application/json")


def error(code: int, message: str, status: int) -> Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return Response(json.dumps(body), status=status, content_type="application/json")


def status_callback(sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": ACCOUNT_SID, "From": FROM, "To": "+48600100200", "ApiVersion": "2010-04-01"}
    if error_code:
        form["ErrorCode"] = error_code
    return form


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature computed the documented way, independently of our validator."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()).decode()
