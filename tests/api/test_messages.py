"""POST /api/v1/messages as a caller sees it: per-item answers, bad items named by index, consent,
Idempotency-Key, limits; then following, listing, exporting and cancelling messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import db, provider_accounts
from tests.factories import Tenant

URL = "/api/v1/messages"


@pytest.fixture
def t(client, rt):
    """A workspace with a (never reached) simulator account and a price for Polish numbers."""
    tenant = Tenant(rt, client)
    with db.transaction(rt.sessions) as session:
        provider_accounts.create_account(session, rt.settings, tenant.ws.id, "simulator",
                                         {"url": "http://127.0.0.1:9", "secret": "s"}, is_default=True)
    tenant.call("PUT", "/api/v1/prices/simulator/48", json={"price_per_part": "0.05", "currency": "PLN"})
    return tenant


def send(t, body, key=None, role="editor"):
    return t.call("POST", URL, role=role, json=body, headers={"Idempotency-Key": key} if key else None)


def test_one_message_is_accepted_with_encoding_parts_and_cost(t):
    r = send(t, {"to": "600 100 200", "text": "Your code is 1234", "reference": "order-7"})
    assert r.status_code == 202, r.json
    item = r.json["messages"][0]
    assert item["status"] == "accepted" and item["id"] and item["to"] == "+48600100200"
    assert (item["encoding"], item["parts"], item["cost"], item["currency"]) == ("GSM-7", 1, "0.05000", "PLN")
    assert item["reference"] == "order-7" and r.json["accepted"] == 1
    contact = t.call("GET", "/api/v1/contacts?q=600100200").json
    assert contact["total"] == 1  # an unknown number became a contact


def test_a_list_reports_bad_items_by_index_and_accepts_the_others(t):
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"messages": [
        {"to": "+48600100200", "text": "ok"},
        {"to": "hello", "text": "x"},  # not a number at all
        {"to": "+48600100201", "template": "nope"},
        {"to": "+48600100202", "text": "late", "send_at": "2001-01-01T00:00:00Z"},
        {"to": "+48600100203", "text": "Hi {{ name }}"},  # missing variable
        {"to": "+48 123", "text": "x"},  # a number, but not a valid one
        {"to": "+48600100204", "text": "later", "send_at": future},
        {"text": "nobody"},
    ]}
    r = send(t, body)
    assert r.status_code == 202, r.json
    got = {m["index"]: m for m in r.json["messages"]}
    assert got[0]["status"] == "accepted" and got[6]["status"] == "accepted"
    assert (got[1]["field"], got[1]["id"]) == ("to", None)
    assert got[2]["field"] == "template" and "not found" in got[2]["reason"]
    assert got[3]["field"] == "send_at" and "past" in got[3]["reason"]
    assert got[4]["id"] and got[4]["status"] == "enqueue_failed" and "name" in got[4]["reason"]
    assert got[4]["field"] is None
    assert got[5]["id"] and got[5]["status"] == "enqueue_failed" and "invalid number" in got[5]["reason"]
    assert got[7]["field"] == "to"
    assert (r.json["accepted"], r.json["failed"]) == (2, 6)


def test_items_of_one_list_keep_their_own_fields_and_ids_follow_the_list(t):
    r = send(t, [{"to": "+4915112345678", "text": "no price here", "tags": ["de"]},
                 {"to": "+48600100200", "text": "priced", "reference": "r1", "validity": 3600},
                 {"to": "+48600100201", "text": "plain"}])
    got = r.json["messages"]
    assert [m["id"] for m in got] == sorted(m["id"] for m in got)
    assert [(m["cost"], m["currency"]) for m in got] == [(None, None), ("0.05000", "PLN"), ("0.05000", "PLN")]
    stored = [t.call("GET", f"{URL}/{m['id']}").json["message"] for m in got]
    assert [(m["reference"], m["tags"], m["validity_s"]) for m in stored] == [
        (None, ["de"], None), ("r1", None, 3600), (None, None, None)]
    assert [m["text"] for m in stored] == ["no price here", "priced", "plain"]


def test_nothing_valid_is_a_422_naming_field_and_index(t):
    r = send(t, {"to": "+48600100200", "template": "missing"})
    assert r.status_code == 422 and r.json["errors"]["json"] == {"template": ["template 'missing' not found"]}
    r = send(t, [{"to": "+48600100200", "text": "x", "send_at": "2001-01-01T00:00:00Z"}])
    assert r.status_code == 422 and "send_at" in r.json["errors"]["json"]["messages"]["0"]


def test_over_max_parts_fails_with_the_reason(t):
    tpl = t.call("POST", "/api/v1/templates", json={"name": "long", "text": "x" * 200, "max_parts": 1}).json
    r = send(t, {"to": "+48600100200", "template": tpl["id"]})
    item = r.json["messages"][0]
    assert item["status"] == "enqueue_failed" and "over max_parts 1" in item["reason"] and item["parts"] == 2


def test_template_by_name_with_variables_and_language(t):
    t.call("POST", "/api/v1/templates", json={"name": "otp", "text": "Kod: {{ code }}", "sender_id": "Shop",
                                             "languages": {"en": "Code: {{ code }}"}})
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100300", "attributes": {"language": "en"}})
    r = send(t, [{"to": "+48600100200", "template": "otp", "variables": {"code": "1"}},
                 {"to": "+48600100300", "template": "otp", "variables": {"code": "2"}}])
    ids = [m["id"] for m in r.json["messages"]]
    texts = [t.call("GET", f"{URL}/{i}").json["message"] for i in ids]
    assert [m["text"] for m in texts] == ["Kod: 1", "Code: 2"] and texts[0]["sender"] == "Shop"
    assert texts[0]["template_id"] is not None


def test_links_are_shortened_unless_the_item_says_not_to(t):
    r = send(t, [{"to": "+48600100200", "text": "See https://shop.example/o/1"},
                 {"to": "+48600100201", "text": "See https://shop.example/o/2", "shorten_links": False}])
    first, second = (t.call("GET", f"{URL}/{m['id']}").json["message"]["text"] for m in r.json["messages"])
    assert "shop.example" not in first and first.startswith("See http://sms.test/")
    assert second == "See https://shop.example/o/2"


def _contact(t, phone, **data):
    return t.call("POST", "/api/v1/contacts", json={"phone": phone, **data}).json["id"]


def test_consent_opt_outs_stopall_and_blocked_contacts(t, rt):
    from core.models import Workspace

    with db.transaction(rt.sessions) as session:
        session.get(Workspace, t.ws.id).settings = {"transactional_categories": ["orders"]}
    marketing_out = _contact(t, "+48600100201", consents={"marketing": {"opted_in": False}})
    stopall = _contact(t, "+48600100202", consents={"all": {"opted_in": False}})
    blocked = _contact(t, "+48600100203", status="blocked")
    r = send(t, [
        {"contact_id": marketing_out, "text": "promo", "consent_category": "marketing"},
        {"contact_id": marketing_out, "text": "your parcel", "consent_category": "orders"},
        {"contact_id": stopall, "text": "your parcel", "consent_category": "orders"},
        {"contact_id": blocked, "text": "your parcel", "consent_category": "orders"},
    ])
    got = r.json["messages"]
    assert got[0]["status"] == "enqueue_failed" and got[0]["reason"] == "opted out of marketing"
    assert got[1]["status"] == "accepted"  # transactional: exempt from the marketing opt-out
    assert got[2]["status"] == "enqueue_failed" and "STOPALL" in got[2]["reason"]
    assert got[3]["status"] == "enqueue_failed" and got[3]["reason"] == "contact is blocked"


def test_external_id_and_create_contacts_false(t):
    cid = _contact(t, "+48600100201", external_ids={"salesforce": "003A"})
    r = send(t, {"messages": [{"external_id": {"source": "salesforce", "id": "003A"}, "text": "hi"},
                              {"to": "+48600100999", "text": "hi"}], "create_contacts": False})
    ok, unknown = r.json["messages"]
    assert ok["status"] == "accepted" and t.call("GET", f"{URL}/{ok['id']}").json["message"]["contact_id"] == cid
    assert unknown["status"] == "accepted"
    assert t.call("GET", "/api/v1/contacts").json["total"] == 1


def test_idempotency_key_replays_the_first_answer_and_rejects_another_body(t):
    body = [{"to": "+48600100200", "text": "code 1"}, {"to": "+48600100201", "text": "code 2"}]
    first = send(t, body, key="k-1")
    again = send(t, body, key="k-1")
    assert again.status_code == 202 and again.json == first.json
    assert t.call("GET", URL).json["total"] == 2  # nothing stored twice
    other = send(t, [{"to": "+48600100200", "text": "code 3"}], key="k-1")
    assert other.status_code == 422 and "Idempotency-Key" in other.json["errors"]["json"]


def test_request_limits(t):
    r = send(t, [{"to": "+48600100200", "text": "x"}] * 1001)
    assert r.status_code == 413
    r = t.call("POST", URL, role="editor", data="to=1", content_type="text/plain")
    assert r.status_code == 400
    assert send(t, []).status_code == 422
    assert send(t, "text").status_code == 422
    assert send(t, {"to": "+48600100200", "text": "x"}, role="viewer").status_code == 403


def test_get_lists_filters_and_exports(t):
    send(t, [{"to": "+48600100200", "text": "a", "reference": "r1", "tags": ["otp"]},
             {"to": "+48600100201", "text": "b", "reference": "r2"},
             {"to": "+48600100202", "text": "Hi {{ x }}"}])
    assert t.call("GET", URL).json["total"] == 3
    assert [m["reference"] for m in t.call("GET", f"{URL}?reference=r2").json["items"]] == ["r2"]
    assert t.call("GET", f"{URL}?tag=otp").json["total"] == 1
    assert t.call("GET", f"{URL}?status=enqueue_failed").json["total"] == 1
    assert t.call("GET", f"{URL}?to=600100201").json["items"][0]["phone"] == "+48600100201"
    assert t.call("GET", f"{URL}?since=2999-01-01T00:00:00Z").json["total"] == 0
    csv = t.call("GET", f"{URL}/export.csv?status=waiting")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("id,created_at,status") and len(lines) == 3


def test_cancel_a_scheduled_message_and_409_once_sent(t, rt):
    from core.models import Message

    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    mid = send(t, {"to": "+48600100200", "text": "later", "send_at": later}).json["messages"][0]["id"]
    detail = t.call("GET", f"{URL}/{mid}").json
    assert detail["message"]["send_at"] and detail["events"] == [] and detail["clicks"] == []
    r = t.call("DELETE", f"{URL}/{mid}", role="editor")
    assert r.status_code == 200 and r.json["status"] == "enqueue_failed" and r.json["reason"] == "cancelled"
    sent = send(t, {"to": "+48600100201", "text": "now"}).json["messages"][0]["id"]
    with db.transaction(rt.sessions) as session:
        session.get(Message, sent).status = "sent"
    assert t.call("DELETE", f"{URL}/{sent}", role="editor").status_code == 409


def test_other_workspace_gets_404_on_every_message_endpoint(t, client, rt):
    mid = send(t, {"to": "+48600100200", "text": "x"}).json["messages"][0]["id"]
    tpl = t.call("POST", "/api/v1/templates", json={"name": "a", "text": "x"}).json["id"]
    cid = _contact(t, "+48600100201")
    other = Tenant(rt, client, "B")
    assert other.call("GET", f"{URL}/{mid}").status_code == 404
    assert other.call("DELETE", f"{URL}/{mid}").status_code == 404
    assert other.call("GET", URL).json["total"] == 0
    assert other.call("GET", f"{URL}/export.csv").get_data(as_text=True).count("\n") == 1
    for body in ({"contact_id": cid, "text": "x"}, {"to": "+48600100200", "template": tpl}):
        r = other.call("POST", URL, json=body)
        assert r.status_code == 422 and "not found" in r.json["message"]
