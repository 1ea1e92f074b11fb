"""The one POST every provider uses: timeouts, retries with backoff and jitter, and status classification.

Decided here, from the status code (as the Singer SDK's `validate_response` does):

=========================  =========================================================================
timeout, connection error  retried in the call; then `ProviderUnavailable` (other request errors, e.g. an
                           invalid header from the settings: `ProviderAuthFailed`)
429, 5xx                   retried in the call (honouring `Retry-After`); then `ProviderUnavailable`
401, 403                   `ProviderAuthFailed` at once (fatal for the account)
anything else              returned: the provider reads 2xx as accepted and other 4xx as per-message errors
=========================  =========================================================================

A read timeout or a 5xx may hide a request the provider did process, so for a provider that does not
de-duplicate by key a retry can, rarely, send one message twice; `Provider.idempotent` tells dispatch which.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from marshmallow import Schema

from core.providers.base import (
    OutboundSms,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
    SendResult,
    short,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries within one send() call, the first included
    base_delay: float = 0.5  # seconds before the second try; doubles on each further try
    max_delay: float = 8.0  # seconds; the longest single backoff sleep
    max_retry_after: float = 30.0  # seconds; a longer Retry-After ends the call at once (the job waits instead)
    connect_timeout: float = 5.0  # seconds to open the TCP/TLS connection
    read_timeout: float = 30.0  # seconds to wait for the response


DEFAULT_POLICY = RetryPolicy()
TRANSPORT_ERRORS = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError)


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to sleep after failed try number `attempt` (0-based): exponential, with half of it jittered."""
    ceiling = min(policy.max_delay, policy.base_delay * 2**attempt)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def retry_after(value: str | None) -> float | None:
    """The `Retry-After` header in seconds (it may be a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_retriable(status: int) -> bool:
    return status == 429 or status >= 500


def describe(response: requests.Response) -> str:
    """The provider's own error text from a response body (JSON keys differ per provider), or the raw body."""
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        for name in ("text", "message", "details", "error_description", "error", "detail"):
            if isinstance(data.get(name), str) and data[name].strip():
                return short(data[name])
    return short(response.text or response.reason or "no body")


def post(
    http: requests.Session,
    url: str,
    *,
    provider: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> requests.Response:
    """POSTs `url` (kwargs as for `requests`), retrying what is retriable; see the module table.

    Never logs the URL's query, headers or body: they may hold credentials.
    """
    host = urlsplit(url).netloc
    reason, wait_hint = "", None
    for attempt in range(policy.attempts):
        try:
            response = http.post(url, timeout=(policy.connect_timeout, policy.read_timeout), **kwargs)
        except TRANSPORT_ERRORS as exc:
            reason, wait_hint = f"{provider}: {type(exc).__name__} talking to {host}", None
        except requests.RequestException as exc:  # an invalid URL or header from the settings: retrying can't help
            raise ProviderAuthFailed(f"{provider}: the request cannot be made ({type(exc).__name__}); "
                                     "check the account's settings") from None
        else:
            if response.status_code in (401, 403):
                raise ProviderAuthFailed(f"{provider} refused the credentials (HTTP {response.status_code}): "
                                         f"{describe(response)}")
            if not is_retriable(response.status_code):
                return response
            wait_hint = retry_after(response.headers.get("Retry-After"))
            reason = f"{provider}: HTTP {response.status_code} from {host}: {describe(response)}"
            if wait_hint is not None and wait_hint > policy.max_retry_after:
                break  # the provider wants a long pause: let the job wait instead of this worker
        if attempt + 1 < policy.attempts:
            pause = wait_hint if wait_hint is not None else backoff(policy, attempt)
            log.info("%s (try %d of %d); retrying in %.2f s", reason, attempt + 1, policy.attempts, pause)
            sleep(pause)
    raise ProviderUnavailable(reason, wait_hint)


def json_body(response: requests.Response) -> Any:
    """The response's JSON, or None when it is not JSON (a provider answering garbage must not crash us)."""
    try:
        return response.json()
    except ValueError:
        return None


class HttpProvider:
    """Shared behaviour of the HTTP gateways: settings, session, callback URL, and the one-request-per-message
    loop (providers without a batch endpoint override `send_one`; batch endpoints override `send`)."""

    name: ClassVar[str]
    settings_schema: ClassVar[type[Schema]]
    idempotent: ClassVar[bool] = False
    max_batch: ClassVar[int] = 100  # one request each, over the shared keep-alive session

    def __init__(self, settings: Mapping[str, Any], http: requests.Session, callback_url: str,
                 policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.settings = dict(settings)  # loaded through the provider's settings_schema by core.providers.build
        self.http = http
        self.callback_url = callback_url
        self.policy = policy

    def send(self, messages: Sequence[OutboundSms]) -> list[SendResult]:
        results: list[SendResult] = []
        for message in messages:
            try:
                results.append(self.send_one(message))
            except ProviderError as exc:
                exc.partial = results + exc.partial  # what was sent before the failure is not sent again
                raise
        return results

    def send_one(self, message: OutboundSms) -> SendResult:
        raise NotImplementedError

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return post(self.http, url, provider=self.name, policy=self.policy, **kwargs)
