"""API keys and roles: 401 without a valid key, 403 for a role that may not, keys shown once."""

from __future__ import annotations

from tests.factories import Tenant, auth


def test_request_without_key_is_401_with_json_error(client, rt):
    response = client.get("/api/v1/contacts")
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert "Bearer" in response.json["message"]


def test_unknown_key_is_401(client, rt):
    response = client.get("/api/v1/contacts", headers=auth("smsc_deadbeef_nope"))
    assert response.status_code == 401


def test_viewer_reads_but_cannot_write(client, rt):
    t = Tenant(rt, client)
    assert t.call("GET", "/api/v1/contacts", "viewer").status_code == 200
    response = t.call("POST", "/api/v1/contacts", "viewer", json={"phone": "+48600100200"})
    assert response.status_code == 403
    assert "editor" in response.json["message"]


def test_editor_writes_contacts_but_not_keys(client, rt):
    t = Tenant(rt, client)
    assert t.call("POST", "/api/v1/contacts", "editor", json={"phone": "+48600100200"}).status_code == 201
    assert t.call("GET", "/api/v1/keys", "editor").status_code == 403
    assert t.call("POST", "/api/v1/keys", "editor", json={"role": "admin"}).status_code == 403


def test_new_key_secret_is_shown_once_and_works(client, rt):
    t = Tenant(rt, client)
    created = t.call("POST", "/api/v1/keys", json={"role": "viewer", "name": "reporting"})
    assert created.status_code == 201
    secret = created.json["key"]
    assert client.get("/api/v1/workspace", headers=auth(secret)).status_code == 200
    listed = t.call("GET", "/api/v1/keys").json["items"]
    assert all("key" not in item for item in listed)
    assert secret not in str(listed)


def test_revoked_key_stops_working(client, rt):
    t = Tenant(rt, client)
    created = t.call("POST", "/api/v1/keys", json={"role": "editor"}).json
    assert t.call("DELETE", f"/api/v1/keys/{created['id']}").status_code == 204
    assert client.get("/api/v1/contacts", headers=auth(created["key"])).status_code == 401


def test_key_is_stored_hashed(client, rt):
    from sqlalchemy import select

    from core.models import ApiKey

    t = Tenant(rt, client)
    with rt.sessions() as session:
        hashes = session.scalars(select(ApiKey.key_hash)).all()
    assert all(secret not in hashes for secret in t.keys.values())
    assert len(hashes) == 3


def test_admin_updates_workspace_settings_and_editor_may_not(client, rt):
    t = Tenant(rt, client)
    assert t.call("PATCH", "/api/v1/workspace", "editor", json={"timezone": "UTC"}).status_code == 403
    response = t.call("PATCH", "/api/v1/workspace", json={"timezone": "Europe/Berlin", "default_region": "DE"})
    assert response.status_code == 200
    assert response.json["default_region"] == "DE"
    bad = t.call("PATCH", "/api/v1/workspace", json={"timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert "timezone" in bad.json["errors"]["json"]
