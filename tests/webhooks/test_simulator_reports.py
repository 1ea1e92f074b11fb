from __future__ import annotations

import json
import time
from typing import Any

import pytest

from core.models import ProviderAccount
from core.runtime import Runtime
from tests.factories import make_workspace
from tests.webhooks import events, make_account, make_message, statuses
from webhooks import signing

SECRET = "sim-secret-0123456789"


@pytest.fixture
def account(rt: Runtime) -> ProviderAccount:
    return make_account(rt, make_workspace(rt).id, "simulator", {"url": "http://127.0.0.1:9", "secret": SECRET})


def _post(client: Any, account: ProviderAccount, reports: list[dict[str, Any]], secret: str = SECRET,
          at: int | None = None) -> Any:
    body = json.dumps({"reports": reports}).encode()
    return client.post(f"/webhooks/dlr/simulator/{account.webhook_token}", data=body, content_type="application/json",
                       headers={"X-Simulator-Signature": signing.sign(secret, body, at)})


def test_signed_reports_apply_by_id_or_key(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    first = make_message(rt, account.workspace_id, "simulator", "id-1")
    second = make_message(rt, account.workspace_id, "simulator", None, key="k-2")
    response = _post(client, account, [{"id": "id-1", "key": "x", "status": "DELIVERED", "code": 0,
                                        "at": "2024-06-06T08:17:19.210Z"},
                                       {"id": "lost", "key": "k-2", "status": "EXPIRED", "code": 408}])
    assert response.json == {"received": 2, "applied": 2, "unknown": 0}
    assert statuses(rt, first, second) == ["delivered", "expired"]


def test_wrong_secret_and_stale_timestamp_are_403(rt: Runtime, client: Any, account: ProviderAccount) -> None:
    sms = make_message(rt, account.workspace_id, "simulator", "id-1")
    report = [{"id": "id-1", "status": "DELIVERED"}]
    assert _post(client, account, report, secret="nope").status_code == 403
    assert _post(client, account, report, at=int(time.time()) - 600).status_code == 403
    assert statuses(rt, sms) == ["sent"] and events(rt, sms.id) == []


@pytest.mark.parametrize("reports", [[{"status": "DELIVERED"}], [{"id": "x", "status": "LOST"}], ["x"]])
def test_bad_reports_are_400(client: Any, account: ProviderAccount, reports: list[Any]) -> None:
    assert _post(client, account, reports).status_code == 400
