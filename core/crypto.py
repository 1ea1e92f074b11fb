"""Fernet encryption of stored credentials (provider and plugin settings) with `Settings.encryption_key`.

The key may list several Fernet keys separated by commas: the first encrypts, all decrypt (key rotation).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.errors import SmsConnectError


class SecretsUnreadable(SmsConnectError):
    """Stored secrets cannot be decrypted: the encryption key changed or is missing."""


def _fernet(key: str) -> MultiFernet:
    keys = [part.strip() for part in key.split(",") if part.strip()]
    if not keys:
        raise SecretsUnreadable("no encryption key is configured (SMSCONNECT_ENCRYPTION_KEY)")
    try:
        return MultiFernet([Fernet(part) for part in keys])
    except ValueError:
        raise SecretsUnreadable("SMSCONNECT_ENCRYPTION_KEY is not a valid Fernet key") from None


def encrypt(key: str, data: dict[str, Any]) -> str:
    """The JSON of `data`, encrypted and authenticated, as text for a TEXT column."""
    return _fernet(key).encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt(key: str, token: str) -> dict[str, Any]:
    try:
        data = json.loads(_fernet(key).decrypt(token.encode()))
    except InvalidToken:
        raise SecretsUnreadable("stored secrets cannot be decrypted with the configured encryption key") from None
    if not isinstance(data, dict):
        raise SecretsUnreadable("stored secrets are not a JSON object")
    return data
