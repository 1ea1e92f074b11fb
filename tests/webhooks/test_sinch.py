from __future__ import annotations

import json
from typing import Any

import pytest

from core.models import ProviderAccount
from core.runtime import Runtime
from tests.factories import make_workspace
from tests.fakes import sinch
from tests.webhooks import events, make_account, make_message, statuses
from webhooks import signing
from webhooks.inbound import SIGNATURE_HEADER


@pytest.fixture
def account(rt: Runtime) -> ProviderAccount:
    ws = make_workspace(rt)
    return make_account(rt, ws.id, "sinch", {"service_plan_id": sinch.PLAN, "api_token": sinch.TOKEN})


def _url(account: ProviderAccount) -> str:
    return f"/webhooks/dlr/sinch/{account.webhook_token}"


def test_a_per_recipient_report_applies_by_batch_id(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "sinch", "01FC66621XXXXX119Z8PMV1QPQ")
    response = client.post(_url(account), json=sinch.recipient_report("01FC66621XXXXX119Z8PMV1QPQ", "Delivered"))
    assert response.status_code == 200 and response.json == {"received": 1, "applied": 1, "unknown": 0}
    assert statuses(rt, sms) == ["delivered"]


def test_the_client_reference_finds_a_message_without_a_stored_batch_id(rt: Runtime, client: Any,
                                                                        account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "sinch", None, key="m-9")
    client.post(_url(account), json=sinch.recipient_report("01UNSTORED", "Dispatched", client_reference="m-9"))
    client.post(_url(account), json=sinch.recipient_report("01UNSTORED", "Rejected", 402, client_reference="m-9"))
    assert statuses(rt, sms) == ["error"] and events(rt, sms.id) == ["error"]  # Dispatched: already sent


def test_summary_reports_and_inbound_messages_are_understood(rt: Runtime, client: Any,
                                                             account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "sinch", "B1")
    assert client.post(_url(account), json=sinch.summary_report("B1", "Expired", 406)).status_code == 200
    assert statuses(rt, sms) == ["expired"]
    mo = {"type": "mo_text", "id": "x", "from": "48600100200", "to": "4712345678", "body": "STOP",
          "received_at": "2016-03-30T19:33:06.643Z"}
    assert client.post(_url(account), json=mo).json == {"received": 0, "applied": 0, "unknown": 0}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"type": "recipient_delivery_report_sms"}',
                                  b'{"type": "something_else"}'])
def test_bad_bodies_are_400(rt: Runtime, client: Any, account: ProviderAccount, body: bytes) -> None:
    sms = make_message(rt, account.workspace_id, "sinch", "B1")
    response = client.post(_url(account), data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["code"] == 400
    assert statuses(rt, sms) == ["sent"]


def test_unknown_tokens_and_mismatched_providers_are_404(client: Any, account: ProviderAccount) -> None:
    report = sinch.recipient_report("B1", "Delivered")
    assert client.post("/webhooks/dlr/sinch/not-a-token", json=report).status_code == 404
    assert client.post(f"/webhooks/dlr/cm/{account.webhook_token}", json=report).status_code == 404
    assert client.post(f"/webhooks/dlr/nexmo/{account.webhook_token}", json=report).status_code == 404
    assert client.get(_url(account)).status_code == 405


def test_a_callback_secret_requires_our_hmac_header(rt: Runtime, client: Any) -> None:
    ws = make_workspace(rt)
    account = make_account(rt, ws.id, "sinch", {"service_plan_id": "p", "api_token": "t", "callback_secret": "cs"})
    sms = make_message(rt, ws.id, "sinch", "B1")
    body = json.dumps(sinch.recipient_report("B1", "Delivered")).encode()
    unsigned = client.post(_url(account), data=body, content_type="application/json")
    signed = client.post(_url(account), data=body, content_type="application/json",
                         headers={SIGNATURE_HEADER: signing.sign("cs", body)})
    assert (unsigned.status_code, signed.status_code) == (403, 200)
    assert statuses(rt, sms) == ["delivered"]
