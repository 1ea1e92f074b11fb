from __future__ import annotations

import pytest
import requests

from core import providers
from core.errors import InvalidInput
from core.providers.http import HttpProvider

MINIMAL = {
    "sinch": {"service_plan_id": "plan", "api_token": "token"},
    "cm": {"product_token": "token"},
    "twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "token", "from": "+15005550006"},
    "generic": {"url": "https://gw.example.com/sms", "body_template": '{"to": "{{to}}", "text": "{{text}}"}'},
    "simulator": {},
}


def test_every_registered_provider_is_named_and_buildable_from_minimal_settings() -> None:
    assert set(providers.PROVIDERS) == set(MINIMAL)
    for name, cls in providers.PROVIDERS.items():
        built = providers.build(name, MINIMAL[name], requests.Session(), "https://sms.test/cb")
        assert built.name == name and isinstance(built, HttpProvider)
        assert cls.max_batch >= 1 and isinstance(cls.idempotent, bool)


def test_only_the_simulator_de_duplicates_by_key() -> None:
    assert [name for name, cls in providers.PROVIDERS.items() if cls.idempotent] == ["simulator"]


def test_unknown_names_and_unknown_settings_fail_clearly() -> None:
    with pytest.raises(InvalidInput, match="unknown provider 'nexmo'; known: cm, generic, simulator, sinch, twilio"):
        providers.get("nexmo")
    with pytest.raises(InvalidInput, match="settings.colour"):
        providers.load_settings("cm", {"product_token": "t", "colour": "red"})
    with pytest.raises(InvalidInput, match="settings.product_token"):
        providers.load_settings("cm", {})


@pytest.mark.parametrize("name, secrets", [
    ("sinch", {"api_token", "callback_secret"}), ("cm", {"product_token", "callback_secret"}),
    ("twilio", {"auth_token"}), ("generic", {"auth_value", "callback_secret"}), ("simulator", {"secret"}),
])
def test_secret_fields_are_declared(name: str, secrets: set[str]) -> None:
    assert providers.secret_fields(name) == secrets
