"""Contacts API: E.164 phones, attributes, consents, soft delete, GDPR erase and export."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.models import Contact
from core.models.base import utcnow
from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    return Tenant(rt, client)


@pytest.mark.parametrize(
    "written", ["600 100 200", "+48 600 100 200", "0048600100200", "(+48) 600-100-200", "48600100200"]
)
def test_phone_in_any_common_form_is_stored_as_e164(t, written):
    response = t.call("POST", "/api/v1/contacts", json={"phone": written})
    assert response.status_code == 201, response.json
    assert response.json["phone"] == "+48600100200"


def test_national_number_uses_the_workspace_region(t):
    t.call("PATCH", "/api/v1/workspace", json={"default_region": "DE"})
    response = t.call("POST", "/api/v1/contacts", json={"phone": "01512 3456789"})
    assert response.json["phone"] == "+4915123456789"


@pytest.mark.parametrize("bad", ["12", "not a phone", "+48 123", ""])
def test_invalid_phone_is_422_naming_field_and_value(t, bad):
    response = t.call("POST", "/api/v1/contacts", json={"phone": bad})
    assert response.status_code == 422
    assert "phone" in response.json["errors"]["json"]
    assert repr(bad) in response.json["message"]


def test_same_phone_twice_is_409(t):
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"})
    response = t.call("POST", "/api/v1/contacts", json={"phone": "600100200"})
    assert response.status_code == 409
    assert "+48600100200" in response.json["message"]


def test_attributes_consents_tags_round_trip(t):
    created = t.call("POST", "/api/v1/contacts", json={
        "phone": "+48600100200", "attributes": {"first_name": "Łukasz", "city": "Kraków", "orders": 3},
        "consents": {"marketing": {"opted_in": True, "source": "shop"}}, "tags": ["vip", "b2c"],
        "external_ids": {"salesforce": "003XX"},
    }).json
    got = t.call("GET", f"/api/v1/contacts/{created['id']}", "viewer").json
    assert got["attributes"] == {"first_name": "Łukasz", "city": "Kraków", "orders": 3}
    assert got["consents"]["marketing"]["opted_in"] is True
    assert got["consents"]["marketing"]["source"] == "shop"
    assert got["tags"] == ["b2c", "vip"]
    assert got["external_ids"] == {"salesforce": "003XX"}


def test_patch_merges_attributes_and_null_removes_one(t):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200",
                                                   "attributes": {"first_name": "Anna", "city": "Gdańsk"}}).json["id"]
    response = t.call("PATCH", f"/api/v1/contacts/{cid}", json={"attributes": {"city": None, "language": "pl"}})
    assert response.status_code == 200
    assert response.json["attributes"] == {"first_name": "Anna", "language": "pl"}


def test_consent_put_records_opt_out_with_source(t):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"]
    response = t.call("PUT", f"/api/v1/contacts/{cid}/consents/marketing", "editor",
                      json={"opted_in": False, "source": "sms-stop"})
    assert response.json["consents"]["marketing"]["opted_in"] is False
    assert response.json["consents"]["marketing"]["source"] == "sms-stop"


def test_soft_delete_then_restore_brings_back_the_status(t):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "status": "blocked"}).json["id"]
    assert t.call("DELETE", f"/api/v1/contacts/{cid}").status_code == 204
    deleted = t.call("GET", f"/api/v1/contacts/{cid}").json
    assert deleted["status"] == "deleted" and deleted["deleted_at"]
    assert t.call("PATCH", f"/api/v1/contacts/{cid}", json={"attributes": {"a": "b"}}).status_code == 409
    restored = t.call("POST", f"/api/v1/contacts/{cid}/restore")
    assert restored.json["status"] == "blocked"


def test_restore_after_retention_is_refused_and_purge_erases(t, rt):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"]
    t.call("DELETE", f"/api/v1/contacts/{cid}")
    with rt.sessions() as session, session.begin():
        session.get(Contact, cid).deleted_at = utcnow() - timedelta(days=31)
    assert t.call("POST", f"/api/v1/contacts/{cid}/restore").status_code == 409
    from core.jobs import purge_deleted_contacts

    assert purge_deleted_contacts() == 1
    assert t.call("GET", f"/api/v1/contacts/{cid}").status_code == 404


def test_gdpr_erase_removes_the_contact_for_good(t, rt):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "consents": {"sms": {"opted_in": True}},
                                                   "tags": ["x"]}).json["id"]
    gid = t.call("POST", "/api/v1/groups", json={"name": "G"}).json["id"]
    t.call("POST", f"/api/v1/groups/{gid}/members", json={"contact_ids": [cid]})
    assert t.call("POST", f"/api/v1/contacts/{cid}/erase").status_code == 204
    assert t.call("GET", f"/api/v1/contacts/{cid}").status_code == 404
    assert t.call("GET", f"/api/v1/groups/{gid}").json["members"] == 0
    from sqlalchemy import func, select

    from core.models import Consent, ContactTag

    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Consent)) == 0
        assert session.scalar(select(func.count()).select_from(ContactTag)) == 0


def test_gdpr_erase_unlinks_clicks_and_short_links(t, rt):
    from datetime import timedelta

    from sqlalchemy import select

    from core.models import Click, ShortLink
    from core.models.base import utcnow

    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"]
    with rt.sessions() as session, session.begin():
        link = ShortLink(token="Erase123", workspace_id=t.ws.id, target_url="https://x.example/", contact_id=cid,
                         identity_mode="never", expires_at=utcnow() + timedelta(days=1))
        session.add(link)
        session.flush()
        session.add(Click(workspace_id=t.ws.id, link_id=link.id, contact_id=cid, user_agent="Phone UA",
                          stream_id="1-0"))
    assert t.call("POST", f"/api/v1/contacts/{cid}/erase").status_code == 204
    with rt.sessions() as session:
        assert session.scalars(select(Click.contact_id)).all() == [None]
        assert session.scalars(select(Click.user_agent)).all() == [None]
        assert session.scalars(select(ShortLink.contact_id)).all() == [None]


def test_gdpr_export_returns_everything_held(t):
    cid = t.call("POST", "/api/v1/contacts", json={
        "phone": "+48600100200", "attributes": {"first_name": "Ewa"},
        "consents": {"marketing": {"opted_in": True}}}).json["id"]
    gid = t.call("POST", "/api/v1/groups", json={"name": "Newsletter"}).json["id"]
    t.call("POST", f"/api/v1/groups/{gid}/members", json={"contact_ids": [cid]})
    export = t.call("GET", f"/api/v1/contacts/{cid}/gdpr-export", "viewer").json
    assert export["contact"]["phone"] == "+48600100200"
    assert export["contact"]["attributes"] == {"first_name": "Ewa"}
    assert export["contact"]["consents"]["marketing"]["opted_in"] is True
    assert export["groups"] == ["Newsletter"]


def test_list_paginates_with_total_and_filters(t):
    for i in range(7):
        status = "blocked" if i < 2 else "active"
        t.call("POST", "/api/v1/contacts", json={"phone": f"+4860010020{i}", "status": status})
    page = t.call("GET", "/api/v1/contacts?page=2&page_size=3", "viewer").json
    assert page["total"] == 7 and page["page"] == 2 and len(page["items"]) == 3
    assert t.call("GET", "/api/v1/contacts?status=blocked").json["total"] == 2
    assert t.call("GET", "/api/v1/contacts?phone=600100203").json["items"][0]["phone"] == "+48600100203"
    assert t.call("GET", "/api/v1/contacts?page_size=5000").status_code == 422


def test_unknown_field_and_bad_status_are_422(t):
    assert t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "status": "zombie"}).status_code == 422
    response = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200", "colour": "red"})
    assert response.status_code == 422
    assert "colour" in response.json["errors"]["json"]


def test_body_over_the_limit_is_413_json(t, settings):
    big = {"phone": "+48600100200", "attributes": {"x": "a" * (settings.max_body_bytes + 10)}}
    response = t.call("POST", "/api/v1/contacts", json=big)
    assert response.status_code == 413
    assert response.json["code"] == 413


def test_openapi_document_and_offline_docs_page(client):
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert "/api/v1/contacts" in spec.json["paths"]
    assert spec.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
