from __future__ import annotations

from typing import Any

import pytest

from core.models import ProviderAccount
from core.runtime import Runtime
from tests.factories import make_contact, make_workspace
from tests.fakes import twilio
from tests.webhooks import contact_status, events, make_account, make_message, message, statuses


@pytest.fixture
def account(rt: Runtime) -> ProviderAccount:
    ws = make_workspace(rt)
    return make_account(rt, ws.id, "twilio", {"account_sid": twilio.ACCOUNT_SID, "auth_token": twilio.AUTH_TOKEN,
                                              "from": twilio.FROM})


def _path(account: ProviderAccount) -> str:
    return f"/webhooks/dlr/twilio/{account.webhook_token}"


def _post(client: Any, account: ProviderAccount, form: dict[str, str], signed_url: str | None = None,
          token: str = twilio.AUTH_TOKEN) -> Any:
    url = signed_url or f"http://sms.test{_path(account)}"  # SMSCONNECT_BASE_URL of the test settings
    return client.post(_path(account), data=form, headers={"X-Twilio-Signature": twilio.sign(url, form, token)})


def test_a_signed_callback_is_applied_and_answered_with_twiml(rt: Runtime, client: Any,
                                                             account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "twilio", "SM" + "a" * 32)
    response = _post(client, account, twilio.status_callback("SM" + "a" * 32, "delivered"))
    assert response.status_code == 200 and response.content_type.startswith("text/xml")
    assert response.get_data(as_text=True).endswith("<Response/>")
    assert statuses(rt, sms) == ["delivered"] and events(rt, sms.id) == ["delivered"]


def test_the_url_as_received_and_its_port_variant_also_verify(rt: Runtime, client: Any,
                                                               account: ProviderAccount) -> None:
    make_message(rt, account.workspace_id, "twilio", "SM1")
    form = twilio.status_callback("SM1", "sent")
    assert _post(client, account, form, f"http://localhost{_path(account)}").status_code == 200
    assert _post(client, account, form, f"http://sms.test:80{_path(account)}").status_code == 200


def test_a_bad_signature_is_403_and_changes_nothing(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "twilio", "SM1")
    form = twilio.status_callback("SM1", "delivered")
    assert _post(client, account, form, token="wrong-token").status_code == 403
    assert _post(client, account, form, f"https://evil.test{_path(account)}").status_code == 403
    tampered = client.post(_path(account), data={**form, "MessageStatus": "failed"},
                           headers={"X-Twilio-Signature": twilio.sign(f"http://sms.test{_path(account)}", form)})
    missing = client.post(_path(account), data=form)
    assert tampered.status_code == 403 and missing.status_code == 403
    assert missing.json["message"].startswith("signature check failed")
    assert statuses(rt, sms) == ["sent"] and events(rt, sms.id) == []


def test_a_signed_but_incomplete_body_is_400(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    response = _post(client, account, {"AccountSid": twilio.ACCOUNT_SID, "MessageStatus": "delivered"})
    assert response.status_code == 400 and "MessageSid" in response.json["message"]


def test_a_permanent_failure_is_an_error_and_archives_the_contact(rt: Runtime, client: Any,
                                                                  account: ProviderAccount) -> None:
    from core.models import Workspace

    with rt.sessions() as session:
        ws = session.get(Workspace, account.workspace_id)
    unknown, absent = make_contact(rt, ws, "+48600100201"), make_contact(rt, ws, "+48600100202")
    first = make_message(rt, ws.id, "twilio", "SM1", contact_id=unknown.id)
    second = make_message(rt, ws.id, "twilio", "SM2", contact_id=absent.id)
    _post(client, account, twilio.status_callback("SM1", "failed", "30005"))
    _post(client, account, twilio.status_callback("SM2", "undelivered", "30003"))
    assert statuses(rt, first, second) == ["error", "undelivered"]
    assert message(rt, first.id).reason == "twilio: failed (30005)"
    assert (contact_status(rt, unknown.id), contact_status(rt, absent.id)) == ("archived", "active")


def test_an_unknown_sid_is_answered_200_so_twilio_stops(client: Any, account: ProviderAccount) -> None:
    assert _post(client, account, twilio.status_callback("SMunknown", "delivered")).status_code == 200
