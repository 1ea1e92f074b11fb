"""The interface every SMS gateway implements, its records, and its error tree.

Errors, grouped by what the caller should do:

- retriable: `ProviderUnavailable` (timeouts, 5xx, 429). Raised only after the in-call retries are used up;
  `retry_after` (seconds) is the provider's own hint when it gave one.
- fatal for the account: `ProviderAuthFailed` (401/403, bad credentials, no balance). Stop the campaign and
  show the message to the admin; retrying cannot help.
- per message, permanent: not an exception. `send()` returns `SendResult(accepted=False, error=...)`.

A provider that loops over several requests in one `send()` and fails midway puts the results it already has
(the messages before the failing one, in order) on the error as `partial`, so none of them is sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

from marshmallow import Schema

from core.errors import SmsConnectError


class OutboundSms(NamedTuple):  # tuples: a batch builds hundreds of these, and a frozen dataclass costs 3x
    message_id: int
    key: str  # idempotency key; sent as the provider's client reference where it has one
    to: str  # E.164, e.g. "+48600100200"
    sender: str | None  # alphanumeric (<= 11 chars) or E.164 number
    text: str
    parts: int


class SendResult(NamedTuple):
    key: str
    accepted: bool
    provider_message_id: str | None = None
    error: str | None = None  # human reason, stored on the message when not accepted (permanent)
    error_code: str | None = None


class ProviderError(SmsConnectError):
    """Base of the errors a provider raises; `partial` holds results already obtained in this call."""

    def __init__(self, message: str, partial: Sequence[SendResult] = ()) -> None:
        super().__init__(message)
        self.partial: list[SendResult] = list(partial)


class ProviderUnavailable(ProviderError):
    """Retriable: timeouts, 5xx, 429. Raised only after the in-call retries are used up."""

    def __init__(self, message: str, retry_after: float | None = None, partial: Sequence[SendResult] = ()) -> None:
        super().__init__(message, partial)
        self.retry_after = retry_after


class ProviderAuthFailed(ProviderError):
    """Fatal for the account: the provider refuses our credentials (or the account itself, e.g. no balance)."""


class Provider(Protocol):
    name: ClassVar[str]
    idempotent: ClassVar[bool]  # True when the provider de-duplicates by key: re-sending after a crash is safe
    max_batch: ClassVar[int]  # most messages one send() call handles (one request, or a keep-alive loop)
    settings_schema: ClassVar[type[Schema]]

    def send(self, messages: Sequence[OutboundSms]) -> list[SendResult]:
        """One result per message, same order; permanent per-message 4xx are results, not exceptions."""
        ...


def short(value: Any, limit: int = 300) -> str:
    """A provider's text for an error reason, cut to a size that fits a log line and a message row."""
    text = str(value).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
