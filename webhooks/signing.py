"""HMAC signatures with a timestamp window, both directions: `t=<unix>,v1=<hex hmac-sha256(secret, "t.body")>`.

The simulator signs its reports with this (`X-Simulator-Signature`); accounts holding a `callback_secret`
expect it on their reports (`X-Smsconnect-Signature`), and our outbound webhooks sign with it too.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_S = 300  # a signature older or newer than 5 minutes is refused (replays, skewed clocks)


class BadSignature(Exception):
    """The request is not from who it claims (403); the message says why, never the expected value."""


def digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body`, signed now (or at `timestamp`, seconds since the epoch)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={digest(secret, t, body)}"


def verify(secret: str, body: bytes, header: str | None, now: float | None = None,
           tolerance: int = TOLERANCE_S) -> None:
    """Raises BadSignature unless `header` signs `body` with `secret` within the window.

    Several `v1=` values are allowed (a sender rotating its secret signs with both).
    """
    if not secret:
        raise BadSignature("no signing secret is configured for this account")
    if not header:
        raise BadSignature("the signature header is missing")
    parts = [item.strip().partition("=") for item in header.split(",")]
    stamps = [value for name, _, value in parts if name == "t"]
    given = [value for name, _, value in parts if name == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not given:
        raise BadSignature("the signature header is malformed; expected t=<unix>,v1=<hex>")
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise BadSignature(f"the signature timestamp is outside the {tolerance} s window")
    expected = digest(secret, t, body)
    if not any(hmac.compare_digest(expected, value) for value in given):
        raise BadSignature("the signature does not match")
