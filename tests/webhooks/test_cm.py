from __future__ import annotations

from typing import Any

import pytest

from core.models import ProviderAccount
from core.runtime import Runtime
from tests.factories import make_workspace
from tests.fakes import cm
from tests.webhooks import make_account, make_message, message, statuses


@pytest.fixture
def account(rt: Runtime) -> ProviderAccount:
    ws = make_workspace(rt)
    return make_account(rt, ws.id, "cm", {"product_token": cm.PRODUCT_TOKEN})


def _url(account: ProviderAccount) -> str:
    return f"/webhooks/dlr/cm/{account.webhook_token}"


def test_a_get_status_report_matches_by_reference(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "cm", None, key="m-1")
    response = client.get(_url(account), query_string=cm.status_report("m-1", 2))
    assert response.status_code == 200 and response.json["applied"] == 1
    assert statuses(rt, sms) == ["delivered"]


def test_the_json_variant_wrapped_and_nested_is_read(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    first = make_message(rt, account.workspace_id, "cm", None, key="m-1")
    second = make_message(rt, account.workspace_id, "cm", None, key="m-2")
    nested = {"RECEIVED": "2024-06-06T08:17:19", "TO": "0048600100200", "REFERENCE": "m-2",
              "STATUS": {"CODE": "1", "ERRORCODE": "5", "ERRORDESCRIPTION": "Message rejected"}}
    body = {"messages": {"msg": [cm.status_report("m-1", 3, "9", "Unreachable"), nested]}}
    assert client.post(_url(account), json=body).json == {"received": 2, "applied": 2, "unknown": 0}
    assert statuses(rt, first, second) == ["undelivered", "error"]
    assert message(rt, first.id).reason == "cm: 3 (9): Unreachable"


def test_a_form_post_works_too(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "cm", None, key="m-1")
    assert client.post(_url(account), data=cm.status_report("m-1", 0)).status_code == 200
    assert statuses(rt, sms) == ["sent"]


@pytest.mark.parametrize("kwargs", [{"json": {"messages": {"msg": {"to": "x"}}}}, {"data": "garbage"},
                                    {"query_string": {"reference": "m-1"}}])
def test_reports_without_reference_or_status_are_400(client: Any, account: ProviderAccount,
                                                     kwargs: dict[str, Any]) -> None:
    method = client.get if "query_string" in kwargs else client.post
    assert method(_url(account), **kwargs).status_code == 400
