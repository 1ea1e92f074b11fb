"""The plugins API and CLI: list, connect (secrets encrypted and masked), check, sync now, status."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from connector.cli import main
from core.models import PluginConnection
from tests.factories import Tenant, make_workspace
from tests.fakes import salesforce as fake


def test_list_shows_installed_plugins_and_their_settings(client, rt) -> None:
    t = Tenant(rt, client)
    response = t.call("GET", "/api/v1/plugins", "viewer")
    assert response.status_code == 200
    salesforce = next(p for p in response.json if p["name"] == "salesforce")
    assert salesforce["available"] and not salesforce["connected"]
    assert {"name": "password", "required": False, "secret": True} .items() <= next(
        f for f in salesforce["settings_fields"] if f["name"] == "password").items()


def test_connect_stores_secrets_encrypted_and_shows_them_masked(client, rt, org) -> None:
    t = Tenant(rt, client)
    response = t.call("PUT", "/api/v1/plugins/salesforce", json={"settings": fake.settings()})
    assert response.status_code == 200, response.json
    assert response.json["settings"]["password"] == "****word" and response.json["status"] == "active"
    assert response.json["trigger_url"].startswith("http://sms.test/webhooks/plugins/salesforce/")
    with rt.sessions() as session:
        stored = session.scalar(select(PluginConnection))
        assert "s3cret" not in stored.settings_encrypted
    again = t.call("PUT", "/api/v1/plugins/salesforce", json={"settings": {**fake.settings(), "password": "****word"}})
    assert again.status_code == 200  # the masked secret keeps its stored value
    viewer = t.call("GET", "/api/v1/plugins/salesforce", "viewer")
    assert viewer.json["trigger_url"] is None and viewer.json["outbox"] == {}
    assert t.call("PUT", "/api/v1/plugins/salesforce", "editor", json={"settings": {}}).status_code == 403


def test_bad_settings_are_422_and_unknown_plugins_404(client, rt) -> None:
    t = Tenant(rt, client)
    bad = t.call("PUT", "/api/v1/plugins/salesforce", json={"settings": {"username": "x", "auth": "password"}})
    assert bad.status_code == 422 and "password" in bad.json["message"]
    assert t.call("PUT", "/api/v1/plugins/hubspot", json={"settings": {}}).status_code == 404
    assert t.call("GET", "/api/v1/plugins/salesforce").status_code == 404


def test_check_names_what_is_wrong(client, rt, org) -> None:
    t = Tenant(rt, client)
    t.call("PUT", "/api/v1/plugins/salesforce", json={"settings": fake.settings(attribute_fields=["Shoe__c"])})
    org.add_people("Contact", 1)
    response = t.call("POST", "/api/v1/plugins/salesforce/check")
    assert response.status_code == 200 and not response.json["ok"]
    assert [p["code"] for p in response.json["problems"]] == ["missing_field", "missing_field"]
    org.wrong_password = True
    response = t.call("POST", "/api/v1/plugins/salesforce/check")
    assert response.json["problems"][0]["code"] == "bad_credentials"
    assert "INVALID_LOGIN" in t.call("GET", "/api/v1/plugins/salesforce").json["last_error"]


def test_sync_now_runs_in_a_worker_and_status_shows_the_result(client, rt, org, run_jobs) -> None:
    t = Tenant(rt, client)
    org.add_people("Contact", 4)
    t.call("PUT", "/api/v1/plugins/salesforce", json={"settings": fake.settings(objects=["Contact"])})
    response = t.call("POST", "/api/v1/plugins/salesforce/sync", json={"full": True})
    assert response.status_code == 202 and response.json["job_id"].startswith("plugin-sync-")
    run_jobs()
    status = t.call("GET", "/api/v1/plugins/salesforce", "viewer").json
    assert status["last_sync"]["created"] == 4 and status["last_sync"]["ok"]
    assert status["api_usage"]["total"] == 15000 and status["contacts_cursor"]
    assert t.call("GET", "/api/v1/plugins", "viewer").json[0]["connected"]
    assert t.call("DELETE", "/api/v1/plugins/salesforce").status_code == 204


def test_cli_lists_connects_syncs_and_shows_status(rt, org, tmp_path: Path, monkeypatch, base_settings) -> None:
    from click.testing import CliRunner

    for key, value in {"SMSCONNECT_DATA_DIR": str(base_settings.data_dir), "SECRET_KEY": base_settings.secret_key,
                       "SMSCONNECT_ENCRYPTION_KEY": base_settings.encryption_key,
                       "DATABASE_URL": base_settings.database_url or "", "REDIS_URL": base_settings.redis_url or "",
                       "SMSCONNECT_BASE_URL": base_settings.base_url}.items():
        monkeypatch.setenv(key, value)
    ws = make_workspace(rt)
    org.add_people("Contact", 2)
    settings_file = tmp_path / "sf.json"
    settings_file.write_text(json.dumps(fake.settings(objects=["Contact"])))
    runner = CliRunner()
    assert "salesforce\tavailable" in runner.invoke(main, ["plugins", "list"]).output
    connected = runner.invoke(main, ["plugins", "connect", "salesforce", "--workspace", str(ws.id),
                                     "--settings", str(settings_file)])
    assert connected.exit_code == 0 and "check: ok" in connected.output, connected.output
    synced = runner.invoke(main, ["plugins", "sync", "salesforce", "--workspace", str(ws.id)])
    assert synced.exit_code == 0 and json.loads(synced.output)["created"] == 2
    status = json.loads(runner.invoke(main, ["plugins", "status", "salesforce", "--workspace", str(ws.id)]).output)
    assert status["status"] == "active" and status["settings"]["password"].startswith("****")
    missing = runner.invoke(main, ["plugins", "status", "salesforce", "--workspace", "999"])
    assert missing.exit_code == 2 and "no salesforce connection" in missing.output
