"""Templates: CRUD, names unique per workspace, bad text refused, preview, and edits that never change a
message already accepted."""

from __future__ import annotations

from core import db, provider_accounts
from tests.factories import Tenant

URL = "/api/v1/templates"


def test_crud_and_unique_name(client, rt):
    t = Tenant(rt, client)
    r = t.call("POST", URL, role="editor", json={"name": "otp", "text": "Code {{ code }}", "tags": ["auth"],
                                                 "consent_category": "otp"})
    assert r.status_code == 201 and r.json["max_parts"] == 6 and r.json["tags"] == ["auth"]
    tid = r.json["id"]
    assert t.call("POST", URL, json={"name": "otp", "text": "x"}).status_code == 409
    assert t.call("PATCH", f"{URL}/{tid}", json={"max_parts": 2}).json["max_parts"] == 2
    assert t.call("GET", f"{URL}?tag=auth").json["total"] == 1
    assert t.call("GET", f"{URL}?name=ot").json["total"] == 1
    assert t.call("DELETE", f"{URL}/{tid}").status_code == 204
    assert t.call("GET", f"{URL}/{tid}").status_code == 404


def test_bad_templates_name_the_field(client, rt):
    t = Tenant(rt, client)
    r = t.call("POST", URL, json={"name": "a", "text": "Hi {% for x in y %}{% endfor %}"})
    assert r.status_code == 422 and "text" in r.json["errors"]["json"]
    r = t.call("POST", URL, json={"name": "a", "text": "ok", "languages": {"en": "{{ oops"}})
    assert r.status_code == 422 and "languages.en" in r.json["errors"]["json"]
    assert t.call("POST", URL, json={"name": "123", "text": "x"}).status_code == 422
    assert t.call("POST", URL, json={"name": "a", "text": "x", "max_parts": 99}).status_code == 422
    assert t.call("POST", URL, json={"text": "x"}).status_code == 422


def test_preview_renders_for_a_contact_in_their_language(client, rt):
    t = Tenant(rt, client)
    tid = t.call("POST", URL, json={"name": "ship", "text": "Paczka {{ no }} w drodze",
                                    "languages": {"en": "Parcel {{ no }} on its way"}}).json["id"]
    contact = {"phone": "+48600100200", "attributes": {"language": "en"}}
    cid = t.call("POST", "/api/v1/contacts", json=contact).json["id"]
    r = t.call("POST", f"{URL}/{tid}/preview", json={"contact_id": cid, "variables": {"no": "A1"}})
    assert r.status_code == 200 and r.json["text"] == "Parcel A1 on its way" and r.json["status"] == "ok"
    r = t.call("POST", f"{URL}/{tid}/preview", json={})
    assert r.json["status"] == "enqueue_failed" and "no" in r.json["reason"]


def test_editing_a_template_keeps_accepted_messages(client, rt):
    t = Tenant(rt, client)
    with db.transaction(rt.sessions) as session:
        provider_accounts.create_account(session, rt.settings, t.ws.id, "simulator",
                                         {"url": "http://127.0.0.1:9", "secret": "s"}, is_default=True)
    tid = t.call("POST", URL, json={"name": "t", "text": "first"}).json["id"]
    mid = t.call("POST", "/api/v1/messages", json={"to": "+48600100200", "template": "t"}).json["messages"][0]["id"]
    t.call("PATCH", f"{URL}/{tid}", json={"text": "second"})
    assert t.call("GET", f"/api/v1/messages/{mid}").json["message"]["text"] == "first"


def test_other_workspace_gets_404_on_every_template_endpoint(client, rt):
    a, b = Tenant(rt, client, "A"), Tenant(rt, client, "B")
    tid = a.call("POST", URL, json={"name": "t", "text": "x"}).json["id"]
    for method, url, body in (("GET", f"{URL}/{tid}", None), ("PATCH", f"{URL}/{tid}", {"text": "mine"}),
                              ("DELETE", f"{URL}/{tid}", None), ("POST", f"{URL}/{tid}/preview", {})):
        assert b.call(method, url, json=body).status_code == 404, url
    assert b.call("GET", URL).json["total"] == 0
    assert a.call("GET", f"{URL}/{tid}").json["text"] == "x"
