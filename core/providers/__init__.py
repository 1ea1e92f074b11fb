"""SMS gateways behind one interface (base.py), by name: `build(name, settings, http, callback_url)`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from marshmallow import ValidationError

from core.errors import InvalidInput
from core.providers.base import (
    OutboundSms,
    Provider,
    ProviderAuthFailed,
    ProviderError,
    ProviderUnavailable,
    SendResult,
)
from core.providers.cm import CmProvider
from core.providers.generic import GenericProvider
from core.providers.http import DEFAULT_POLICY, HttpProvider, RetryPolicy
from core.providers.simulator import SimulatorProvider
from core.providers.sinch import SinchProvider
from core.providers.twilio import TwilioProvider

__all__ = [
    # records and the interface
    "OutboundSms", "SendResult", "Provider", "RetryPolicy",
    # errors: retriable, then fatal for the account
    "ProviderError", "ProviderUnavailable", "ProviderAuthFailed",
    # lookup
    "PROVIDERS", "get", "load_settings", "secret_fields", "build",
]

PROVIDERS: dict[str, type[HttpProvider]] = {
    cls.name: cls for cls in (SinchProvider, CmProvider, TwilioProvider, GenericProvider, SimulatorProvider)
}


def get(name: str) -> type[HttpProvider]:
    """The provider class for a name; InvalidInput naming the known ones otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise InvalidInput("provider", f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}",
                           name) from None


def load_settings(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validates a provider's settings with its schema; InvalidInput names the first bad field."""
    try:
        return get(name).settings_schema().load(dict(raw))  # type: ignore[no-any-return]
    except ValidationError as exc:
        messages = exc.normalized_messages()
        field = next(iter(messages), "settings")
        detail = messages[field]
        text = "; ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
        raise InvalidInput(f"settings.{field}", text, None) from None


def secret_fields(name: str) -> frozenset[str]:
    """The settings keys (as stored) that are secrets: masked in every response, never logged."""
    schema = get(name).settings_schema()
    return frozenset(f.data_key or key for key, f in schema.fields.items() if f.metadata.get("secret"))


def build(provider: str, settings: Mapping[str, Any], http: requests.Session, callback_url: str, *,
          policy: RetryPolicy = DEFAULT_POLICY) -> Provider:
    """A ready provider from its name and decrypted settings (validated here; bad ones raise InvalidInput)."""
    return get(provider)(load_settings(provider, settings), http, callback_url, policy)
