from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from core import crypto, db, provider_accounts
from core.errors import NotFound
from core.runtime import Runtime
from core.settings import Settings
from tests.factories import make_workspace

SINCH = {"service_plan_id": "plan-1", "api_token": "tok-ABCDEFGHIJKLMNOP"}


def test_crypto_round_trips_and_refuses_a_wrong_key() -> None:
    key = Fernet.generate_key().decode()
    token = crypto.encrypt(key, {"a": "secret"})
    assert "secret" not in token and crypto.decrypt(key, token) == {"a": "secret"}
    with pytest.raises(crypto.SecretsUnreadable):
        crypto.decrypt(Fernet.generate_key().decode(), token)
    with pytest.raises(crypto.SecretsUnreadable):
        crypto.encrypt("not-a-key", {})


def test_crypto_rotation_reads_old_tokens_with_the_new_key_first() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = crypto.encrypt(old, {"a": 1})
    assert crypto.decrypt(f"{new},{old}", token) == {"a": 1}


def test_mask_keeps_only_the_last_four_of_long_secrets() -> None:
    assert provider_accounts.mask("tok-ABCDEFGHIJKLMNOP") == "****MNOP"
    assert provider_accounts.mask("short") == "****"
    assert provider_accounts.mask(None) is None


def test_settings_are_stored_encrypted_and_the_first_account_is_the_default(rt: Runtime, settings: Settings) -> None:
    ws = make_workspace(rt)
    with db.transaction(rt.sessions) as session:
        first = provider_accounts.create_account(session, settings, ws.id, "sinch", SINCH, "Sinch EU")
        second = provider_accounts.create_account(session, settings, ws.id, "simulator", {"secret": "s"})
        assert "tok-ABCD" not in first.settings_encrypted
        assert provider_accounts.decrypted(settings, first) == SINCH
        assert first.is_default and not second.is_default
        assert len(first.webhook_token) >= 40 and first.webhook_token != second.webhook_token
        assert provider_accounts.get_default(session, ws.id) is first
        assert provider_accounts.callback_url(settings, first) == (
            f"http://sms.test/webhooks/dlr/sinch/{first.webhook_token}")


def test_an_update_keeps_a_secret_sent_back_masked(rt: Runtime, settings: Settings) -> None:
    ws = make_workspace(rt)
    with db.transaction(rt.sessions) as session:
        account = provider_accounts.create_account(session, settings, ws.id, "sinch", SINCH)
        shown = provider_accounts.masked(settings, account)
        assert shown["api_token"] == "****MNOP"
        provider_accounts.update_account(session, settings, account, {"settings": {**shown, "region": "us"}})
        assert provider_accounts.decrypted(settings, account) == {**SINCH, "region": "us"}
        provider_accounts.update_account(session, settings, account, {"settings": {"api_token": "new-token"}})
        assert provider_accounts.decrypted(settings, account)["api_token"] == "new-token"


def test_accounts_are_scoped_to_their_workspace(rt: Runtime, settings: Settings) -> None:
    mine, theirs = make_workspace(rt, "Mine"), make_workspace(rt, "Theirs")
    with db.transaction(rt.sessions) as session:
        account = provider_accounts.create_account(session, settings, theirs.id, "cm", {"product_token": "t"})
        with pytest.raises(NotFound):
            provider_accounts.get_account(session, mine.id, account.id)
        assert provider_accounts.by_webhook_token(session, "cm", account.webhook_token) is account
        assert provider_accounts.by_webhook_token(session, "sinch", account.webhook_token) is None
