from __future__ import annotations

import json
from typing import Any

import pytest

from core.runtime import Runtime
from tests.factories import make_workspace
from tests.webhooks import make_account
from webhooks import signing

SETTINGS = {
    "sinch": {"service_plan_id": "p", "api_token": "t"},
    "cm": {"product_token": "t"},
    "generic": {"url": "https://gw.test/sms", "body_template": '{"to": "{{to}}", "text": "{{text}}"}'},
    "simulator": {"secret": "s"},
}
GARBAGE: list[Any] = [None, 0, "x", [], [None], {}, {"type": 5}, {"reports": {"a": 1}}, {"reports": [{"id": {}}]},
                      {"messages": {"msg": 7}}, {"type": "delivery_report_sms", "batch_id": "b", "statuses": [{}]},
                      {"type": "recipient_delivery_report_sms", "batch_id": ["b"], "status": {"x": 1}},
                      {"type": "delivery_report_sms", "batch_id": "b", "statuses": [{"recipients": 5}]},
                      {"id": "x", "status": ["delivered"]}, {"reference": "r", "statuscode": {"a": 1}}]


@pytest.mark.parametrize("provider", sorted(SETTINGS))
def test_garbage_bodies_never_crash_an_endpoint(rt: Runtime, client: Any, provider: str) -> None:
    account = make_account(rt, make_workspace(rt).id, provider, SETTINGS[provider])
    for garbage in GARBAGE:
        body = json.dumps(garbage).encode()
        response = client.post(f"/webhooks/dlr/{provider}/{account.webhook_token}", data=body,
                               content_type="application/json",
                               headers={"X-Simulator-Signature": signing.sign("s", body)})
        assert response.status_code in (200, 400), (provider, garbage, response.json)
        assert response.is_json


def test_an_unsigned_twilio_post_is_refused_before_parsing(rt: Runtime, client: Any) -> None:
    account = make_account(rt, make_workspace(rt).id, "twilio",
                           {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from": "+15005550006"})
    assert client.post(f"/webhooks/dlr/twilio/{account.webhook_token}", data="garbage").status_code == 403
