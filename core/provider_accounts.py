"""A workspace's SMS gateway accounts: settings stored encrypted, secrets masked on the way out, one default.

Each account has a random `webhook_token` that names it in its delivery-report URL
(`/webhooks/dlr/<provider>/<token>`); for gateways without a signature scheme that token is the shared secret.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import crypto, providers
from core.errors import InvalidInput, NotFound
from core.models import ProviderAccount
from core.providers import Provider, RetryPolicy
from core.providers.http import DEFAULT_POLICY
from core.settings import Settings

log = logging.getLogger(__name__)

MASK = "****"


def mask(value: Any) -> str | None:
    """A secret as shown by the API: its last 4 characters when it is long enough to keep 8 hidden."""
    if value in (None, ""):
        return value  # type: ignore[no-any-return]
    text = str(value)
    return MASK + text[-4:] if len(text) >= 12 else MASK


def webhook_path(account: ProviderAccount) -> str:
    return f"/webhooks/dlr/{account.provider}/{account.webhook_token}"


def callback_url(settings: Settings, account: ProviderAccount) -> str:
    """The public URL the gateway posts delivery reports to (from SMSCONNECT_BASE_URL)."""
    return settings.base_url.rstrip("/") + webhook_path(account)


def decrypted(settings: Settings, account: ProviderAccount) -> dict[str, Any]:
    return crypto.decrypt(settings.encryption_key, account.settings_encrypted)


def masked(settings: Settings, account: ProviderAccount) -> dict[str, Any]:
    """The account's settings with every secret masked: the only form that leaves core."""
    hidden = providers.secret_fields(account.provider)
    return {key: mask(value) if key in hidden else value for key, value in decrypted(settings, account).items()}


def provider_for(settings: Settings, account: ProviderAccount, http: requests.Session,
                 policy: RetryPolicy = DEFAULT_POLICY) -> Provider:
    """The ready-to-send provider of an account, with its callback URL; dispatch's one entry point."""
    return providers.build(account.provider, decrypted(settings, account), http, callback_url(settings, account),
                           policy=policy)


_DEFAULT_FIRST = (ProviderAccount.is_default.desc(), ProviderAccount.id)  # the first account is the default


def list_accounts(workspace_id: int) -> Any:
    """The SELECT of a workspace's accounts, default first (for paging)."""
    return select(ProviderAccount).where(ProviderAccount.workspace_id == workspace_id).order_by(*_DEFAULT_FIRST)


def get_account(session: Session, workspace_id: int, account_id: int) -> ProviderAccount:
    account = session.get(ProviderAccount, account_id)
    if account is None or account.workspace_id != workspace_id:
        raise NotFound(f"provider account {account_id} not found")
    return account


def get_default(session: Session, workspace_id: int) -> ProviderAccount | None:
    """The workspace's default account (the oldest one when none is flagged), or None."""
    return session.scalars(list_accounts(workspace_id).limit(1)).first()


def default_provider_column(workspace_id: Any) -> Any:
    """get_default's provider name as a scalar subquery, to read it along with something else."""
    return (select(ProviderAccount.provider).where(ProviderAccount.workspace_id == workspace_id)
            .order_by(*_DEFAULT_FIRST).limit(1).scalar_subquery())


def by_webhook_token(session: Session, provider: str, token: str) -> ProviderAccount | None:
    if not token or len(token) > 64:
        return None
    account = session.scalars(select(ProviderAccount).where(ProviderAccount.webhook_token == token)).first()
    return account if account is not None and account.provider == provider else None


def create_account(session: Session, settings: Settings, workspace_id: int, provider: str,
                   raw: dict[str, Any], name: str = "", is_default: bool = False) -> ProviderAccount:
    providers.load_settings(provider, raw)  # InvalidInput("settings.<field>") before anything is stored
    account = ProviderAccount(
        workspace_id=workspace_id, provider=provider, name=(name or provider).strip()[:200],
        settings_encrypted=crypto.encrypt(settings.encryption_key, raw),
        webhook_token=secrets.token_urlsafe(32), is_default=False,
    )
    session.add(account)
    session.flush()
    if is_default or get_default(session, workspace_id) is account:
        set_default(session, account)
    log.info("provider account %s (%s) created in workspace %s", account.id, provider, workspace_id)
    return account


def update_account(session: Session, settings: Settings, account: ProviderAccount,
                   changes: dict[str, Any]) -> ProviderAccount:
    """Applies `name`, `settings` (merged into the stored ones) and `is_default`.

    A secret sent back exactly as the API masked it keeps its stored value, so a form can round-trip.
    """
    if "provider" in changes and changes["provider"] != account.provider:
        raise InvalidInput("provider", "cannot change; create a new account instead", changes["provider"])
    if "name" in changes:
        account.name = str(changes["name"]).strip()[:200]
    if "settings" in changes:
        stored = decrypted(settings, account)
        hidden = providers.secret_fields(account.provider)
        merged = dict(stored)
        for key, value in changes["settings"].items():
            if key in hidden and key in stored and value == mask(stored[key]):
                continue
            merged[key] = value
        providers.load_settings(account.provider, merged)
        account.settings_encrypted = crypto.encrypt(settings.encryption_key, merged)
    if changes.get("is_default"):
        set_default(session, account)
    session.flush()
    return account


def set_default(session: Session, account: ProviderAccount) -> None:
    session.execute(update(ProviderAccount).where(ProviderAccount.workspace_id == account.workspace_id,
                                                  ProviderAccount.id != account.id).values(is_default=False))
    account.is_default = True
    session.flush()


def delete_account(session: Session, account: ProviderAccount) -> None:
    """Deletes an account; when it was the default, the oldest remaining one becomes the default."""
    workspace_id, was_default = account.workspace_id, account.is_default
    session.delete(account)
    session.flush()
    if was_default:
        successor = get_default(session, workspace_id)
        if successor is not None:
            set_default(session, successor)
