"""The domain error tree, grouped by what the caller should do. connector/errors.py maps it to HTTP."""

from __future__ import annotations


class SmsConnectError(Exception):
    """Base of every error that core raises on purpose."""


class NotFound(SmsConnectError):
    """The thing does not exist in this workspace (HTTP 404)."""


class Conflict(SmsConnectError):
    """The action is not allowed in the current state (HTTP 409)."""


class InvalidInput(SmsConnectError):
    """A value is wrong; names the field and the value (HTTP 422)."""

    def __init__(self, field: str, message: str, value: object = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.value = value


class InvalidPhone(InvalidInput):
    def __init__(self, value: object, field: str = "phone", why: str = "not a valid phone number") -> None:
        super().__init__(field, f"{value!r} is {why}", value)


class ImportFailed(SmsConnectError):
    """An import cannot run at all (empty file, missing column); nothing was written."""
