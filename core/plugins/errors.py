"""The plugin error tree, grouped by what core does next (as singer_sdk/exceptions.py groups its own).

- fatal: the connection stops and the admin sees why (`BadSettings`, `AuthFailed`, `PermissionMissing`);
- retriable: the job goes back on the queue with backoff (`RateLimited(retry_after)`, `Unavailable`);
- skippable: this one request or record is refused, the connection carries on (`TriggerRefused`).
"""

from __future__ import annotations

from core.errors import SmsConnectError

__all__ = [
    "PluginError",
    "PluginNotFound",
    # fatal
    "FatalPluginError", "BadSettings", "AuthFailed", "PermissionMissing",
    # retriable
    "RetriablePluginError", "RateLimited", "Unavailable",
    # skippable
    "TriggerRefused",
]


class PluginError(SmsConnectError):
    """Base of every error a plugin raises on purpose."""


class PluginNotFound(PluginError):
    """No installed plugin has this name (or it failed to load)."""


class FatalPluginError(PluginError):
    """Retrying cannot help: the connection stops until an admin fixes it."""


class BadSettings(FatalPluginError):
    """A setting is missing or wrong (unknown field, bad domain, ...)."""


class AuthFailed(FatalPluginError):
    """The CRM refused the credentials, or a re-login after an expired session failed too."""


class PermissionMissing(FatalPluginError):
    """The CRM user lacks a permission or the API is disabled for the org."""


class RetriablePluginError(PluginError):
    """Try again later; `retry_after` is a hint in seconds."""

    retry_after: float = 60.0


class RateLimited(RetriablePluginError):
    """The CRM's API quota or rate limit is used up."""

    def __init__(self, message: str, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(RetriablePluginError):
    """The CRM is down, timing out or answering 5xx."""

    def __init__(self, message: str, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TriggerRefused(PluginError):
    """An inbound trigger request is not acceptable (wrong organization, bad body); answered with `status`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
