"""Salesforce auth and calls through simple-salesforce: login (password or JWT bearer), re-login once on
INVALID_SESSION_ID, and every library error decided fatal or retriable at this one boundary."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from core.plugins.errors import AuthFailed, BadSettings, PermissionMissing, PluginError, RateLimited, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

LIMIT_BACKOFF_S = 3600.0  # REQUEST_LIMIT_EXCEEDED: the org's 24 h quota is spent; retrying sooner burns nothing
THROTTLE_BACKOFF_S = 60.0  # 429 / 503: short-lived
PERMISSION_CODES = frozenset({"API_DISABLED_FOR_ORG", "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY",
                              "FUNCTIONALITY_NOT_ENABLED", "API_CURRENTLY_DISABLED"})


def error_code(exc: SalesforceError) -> str:
    """The errorCode of Salesforce's JSON error array, e.g. REQUEST_LIMIT_EXCEEDED."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("errorCode") or "")
    return ""


def error_message(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return f"{content[0].get('errorCode')}: {content[0].get('message')}"
    return f"HTTP {exc.status}: {str(content)[:200]}"


def translate(exc: SalesforceError) -> PluginError:
    """The plugin error for a simple-salesforce error (fatal or retriable, from the status and errorCode)."""
    code, message = error_code(exc), error_message(exc)
    if isinstance(exc, SalesforceRefusedRequest):
        if code == "REQUEST_LIMIT_EXCEEDED":
            return RateLimited(message, retry_after=LIMIT_BACKOFF_S)
        return PermissionMissing(message)
    if isinstance(exc, SalesforceMalformedRequest | SalesforceResourceNotFound):
        return BadSettings(message)  # an unknown field or object named in the settings
    if isinstance(exc, SalesforceExpiredSession):
        return AuthFailed(message)
    if exc.status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
        return RateLimited(message, retry_after=THROTTLE_BACKOFF_S)
    return Unavailable(message, retry_after=THROTTLE_BACKOFF_S)


class Client:
    """One Salesforce session for one plugin instance; `calls` counts REST calls (logins included)."""

    def __init__(self, settings: Mapping[str, Any], http: requests.Session) -> None:
        self.settings = settings
        self.http = http
        self._sf: Salesforce | None = None
        self.calls = 0
        self.logins = 0

    def login(self) -> Salesforce:
        s = self.settings
        kwargs: dict[str, Any] = {"session": self.http, "username": s["username"], "domain": s["domain"],
                                  "sf_version": s["version"]}
        if s["auth"] == "jwt":
            kwargs.update(consumer_key=s["consumer_key"], privatekey=s["private_key"])
        else:
            kwargs.update(password=s["password"], security_token=s["security_token"])
        self.calls += 1
        self.logins += 1
        try:
            session_id, instance = SalesforceLogin(**kwargs)
        except SalesforceAuthenticationFailed as exc:
            raise AuthFailed(f"Salesforce refused the login: {exc}") from None
        except requests.RequestException as exc:
            raise Unavailable(f"Salesforce login failed: {type(exc).__name__}") from None
        self._sf = Salesforce(session_id=session_id, instance=instance, session=self.http, version=s["version"])
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.login()

    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Runs one REST call; an expired session logs in again once and retries the call once."""
        for attempt in (1, 2):
            sf = self.sf
            self.calls += 1
            try:
                return fn(sf)
            except SalesforceExpiredSession as exc:
                if attempt == 2:
                    raise AuthFailed(f"session expired again right after a new login: {error_message(exc)}") from None
                log.info("Salesforce session expired; logging in again")
                self.login()
            except SalesforceError as exc:
                raise translate(exc) from None
            except requests.RequestException as exc:
                raise Unavailable(f"Salesforce did not answer: {type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def pages(self, soql: str, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """A query's pages as Salesforce returns them (up to 2,000 records each), following nextRecordsUrl.

        Each page is its own call, so an expired session mid-query costs one re-login, not a restart."""
        result = self.call(lambda sf: sf.query(soql, include_deleted=include_deleted))
        while True:
            yield list(result["records"])
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                return
            next_url = result["nextRecordsUrl"]
            result = self.call(lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True))

    @property
    def api_usage(self) -> dict[str, Any]:
        """The daily API usage from the last response's Sforce-Limit-Info header."""
        usage = getattr(self._sf, "api_usage", None) or {}
        found = usage.get("api-usage")
        return {"used": found.used, "total": found.total} if found is not None else {}
