from __future__ import annotations

from typing import Any

from core.runtime import Runtime
from tests.factories import make_workspace
from tests.webhooks import make_account, make_message, statuses

SETTINGS = {"url": "https://gw.test/sms", "body_template": '{"to": "{{to}}", "text": "{{text}}"}',
            "status_map": {"OK": "delivered", "NOK": "undelivered"}}


def test_reports_by_id_or_key_with_the_account_status_map(rt: Runtime, client: Any) -> None:
    ws = make_workspace(rt)
    account = make_account(rt, ws.id, "generic", SETTINGS)
    by_id = make_message(rt, ws.id, "generic", "g-1")
    by_key = make_message(rt, ws.id, "generic", None, key="m-2")
    smpp = make_message(rt, ws.id, "generic", "g-3")
    reports = {"reports": [{"id": "g-1", "status": "OK"}, {"reference": "m-2", "status": "NOK", "code": 27},
                           {"message_id": "g-3", "status": "REJECTD"}, {"id": "g-4", "status": "WEIRD"}]}
    response = client.post(f"/webhooks/dlr/generic/{account.webhook_token}", json=reports)
    assert response.json == {"received": 3, "applied": 3, "unknown": 0}
    assert statuses(rt, by_id, by_key, smpp) == ["delivered", "undelivered", "error"]


def test_a_single_object_is_a_report_and_a_shapeless_one_is_400(rt: Runtime, client: Any) -> None:
    ws = make_workspace(rt)
    account = make_account(rt, ws.id, "generic", SETTINGS)
    sms = make_message(rt, ws.id, "generic", "g-1")
    url = f"/webhooks/dlr/generic/{account.webhook_token}"
    assert client.post(url, json={"id": "g-1", "status": "delivered"}).status_code == 200
    assert client.post(url, json={"status": "delivered"}).status_code == 400
    assert client.post(url, json=[1, 2]).status_code == 400
    assert statuses(rt, sms) == ["delivered"]
