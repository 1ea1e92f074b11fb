from __future__ import annotations

from typing import Any

from tests.factories import Tenant

URL = "/api/v1/providers"
SINCH = {"provider": "sinch", "name": "Sinch EU",
         "settings": {"service_plan_id": "plan-1", "api_token": "tok-ABCDEFGHIJKLMNOP", "region": "eu"}}


def _create(tenant: Tenant, payload: dict[str, Any] = SINCH) -> dict[str, Any]:
    response = tenant.call("POST", URL, json=payload)
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def test_admin_creates_an_account_and_never_sees_the_secret_again(rt, client) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(rt, client)
    created = _create(tenant)
    assert created["settings"] == {"service_plan_id": "plan-1", "api_token": "****MNOP", "region": "eu"}
    assert created["is_default"] and created["webhook_url"].startswith("http://sms.test/webhooks/dlr/sinch/")
    for response in (tenant.call("GET", URL), tenant.call("GET", f"{URL}/{created['id']}")):
        assert "tok-ABCDEFGHIJKLMNOP" not in response.get_data(as_text=True)


def test_viewers_list_masked_without_the_webhook_url_and_cannot_write(rt, client) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(rt, client)
    created = _create(tenant)
    listed = tenant.call("GET", URL, role="viewer").json
    assert listed["total"] == 1 and listed["items"][0]["settings"]["api_token"] == "****MNOP"
    assert listed["items"][0]["webhook_url"] is None
    assert tenant.call("POST", URL, role="editor", json=SINCH).status_code == 403
    assert tenant.call("DELETE", f"{URL}/{created['id']}", role="viewer").status_code == 403


def test_bad_settings_are_a_422_naming_the_field(rt, client) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(rt, client)
    response = tenant.call("POST", URL, json={**SINCH, "settings": {"service_plan_id": "p", "region": "eu"}})
    assert response.status_code == 422 and "settings.api_token" in response.json["errors"]["json"]
    response = tenant.call("POST", URL, json={**SINCH, "provider": "nexmo"})
    assert response.status_code == 422 and "provider" in response.json["errors"]["json"]


def test_patch_keeps_masked_secrets_and_default_moves(rt, client) -> None:  # type: ignore[no-untyped-def]
    tenant = Tenant(rt, client)
    first = _create(tenant)
    second = _create(tenant, {"provider": "simulator", "settings": {"secret": "sim-secret-123456"}})
    assert not second["is_default"]
    patched = tenant.call("PATCH", f"{URL}/{first['id']}", json={"settings": {**first["settings"], "region": "us"},
                                                                  "name": "Sinch US"}).json
    assert patched["settings"]["api_token"] == "****MNOP" and patched["settings"]["region"] == "us"
    assert tenant.call("POST", f"{URL}/{second['id']}/default").json["is_default"]
    assert [a["id"] for a in tenant.call("GET", URL).json["items"]] == [second["id"], first["id"]]
    assert tenant.call("DELETE", f"{URL}/{second['id']}").status_code == 204
    assert tenant.call("GET", f"{URL}/{first['id']}").json["is_default"]


def test_another_workspace_s_account_is_not_found(rt, client) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = Tenant(rt, client, "Mine"), Tenant(rt, client, "Theirs")
    foreign = _create(theirs)
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/default")):
        response = mine.call(method, f"{URL}/{foreign['id']}{path}", json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
    assert mine.call("GET", URL).json["total"] == 0


def test_types_list_each_provider_s_fields(rt, client) -> None:  # type: ignore[no-untyped-def]
    types = {t["name"]: t for t in Tenant(rt, client).call("GET", f"{URL}/types", role="viewer").json}
    assert set(types) == {"cm", "generic", "simulator", "sinch", "twilio"}
    fields = {f["name"]: f for f in types["twilio"]["fields"]}
    assert fields["auth_token"] == {"name": "auth_token", "required": True, "secret": True}
    assert "from" in fields and types["simulator"]["idempotent"]
