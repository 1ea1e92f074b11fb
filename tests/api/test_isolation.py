"""A key of one workspace can never read or touch another workspace's data, on any endpoint."""

from __future__ import annotations

import io

import pytest

from tests.factories import Tenant


@pytest.fixture
def pair(client, rt, run_jobs):
    """Workspace A with one of everything, and workspace B whose keys try to reach it."""
    a, b = Tenant(rt, client, "A"), Tenant(rt, client, "B")
    ids = {
        "contact": a.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).json["id"],
        "group": a.call("POST", "/api/v1/groups", json={"name": "G"}).json["id"],
        "segment": a.call("POST", "/api/v1/segments", json={"name": "S", "filter": {"status": "active"}}).json["id"],
        "key": a.call("POST", "/api/v1/keys", json={"role": "viewer"}).json["id"],
    }
    upload = {"file": (io.BytesIO(b"phone\n+48600100201\n"), "a.csv")}
    ids["import"] = a.call("POST", "/api/v1/imports", data=upload, content_type="multipart/form-data").json["id"]
    run_jobs()
    return a, b, ids


# Every endpoint that names a row of A, as B would call it.
FOREIGN_CALLS = [
    ("GET", "/api/v1/contacts/{contact}", None),
    ("PATCH", "/api/v1/contacts/{contact}", {"attributes": {"x": "1"}}),
    ("DELETE", "/api/v1/contacts/{contact}", None),
    ("POST", "/api/v1/contacts/{contact}/restore", None),
    ("POST", "/api/v1/contacts/{contact}/erase", None),
    ("GET", "/api/v1/contacts/{contact}/gdpr-export", None),
    ("PUT", "/api/v1/contacts/{contact}/consents/marketing", {"opted_in": False}),
    ("GET", "/api/v1/contacts?segment_id={segment}", None),
    ("GET", "/api/v1/contacts?group_id={group}", None),
    ("GET", "/api/v1/contacts/export.csv?segment_id={segment}", None),
    ("GET", "/api/v1/contacts/export.csv?group_id={group}", None),
    ("GET", "/api/v1/groups/{group}", None),
    ("PATCH", "/api/v1/groups/{group}", {"name": "mine"}),
    ("DELETE", "/api/v1/groups/{group}", None),
    ("POST", "/api/v1/groups/{group}/members", {"contact_ids": [1]}),
    ("DELETE", "/api/v1/groups/{group}/members", {"contact_ids": [1]}),
    ("GET", "/api/v1/segments/{segment}", None),
    ("PUT", "/api/v1/segments/{segment}", {"name": "mine", "filter": {"status": "active"}}),
    ("DELETE", "/api/v1/segments/{segment}", None),
    ("DELETE", "/api/v1/keys/{key}", None),
    ("GET", "/api/v1/imports/{import}", None),
    ("GET", "/api/v1/imports/{import}/errors", None),
]


@pytest.mark.parametrize(("method", "url", "body"), FOREIGN_CALLS)
def test_other_workspace_gets_404_and_changes_nothing(pair, method, url, body):
    a, b, ids = pair
    response = b.call(method, url.format(**ids), json=body)
    assert response.status_code == 404, (url, response.json)
    # A's data is untouched.
    contact = a.call("GET", f"/api/v1/contacts/{ids['contact']}").json
    assert contact["status"] == "active" and contact["attributes"] == {} and contact["consents"] == {}
    assert a.call("GET", f"/api/v1/groups/{ids['group']}").json["name"] == "G"
    assert a.call("GET", f"/api/v1/segments/{ids['segment']}").json["name"] == "S"
    assert a.call("GET", f"/api/v1/imports/{ids['import']}").status_code == 200
    assert any(k["id"] == ids["key"] and k["revoked_at"] is None for k in a.call("GET", "/api/v1/keys").json["items"])


@pytest.mark.parametrize(
    "url", ["/api/v1/contacts", "/api/v1/groups", "/api/v1/segments", "/api/v1/imports", "/api/v1/keys"]
)
def test_listings_show_only_own_rows(pair, url):
    a, b, _ = pair
    assert a.call("GET", url).json["total"] >= 1
    expected = 3 if url.endswith("keys") else 0  # B's own three role keys
    assert b.call("GET", url).json["total"] == expected


def test_export_and_counts_show_only_own_contacts(pair):
    a, b, ids = pair
    assert "+48600100200" in a.call("GET", "/api/v1/contacts/export.csv").get_data(as_text=True)
    assert "+486001002" not in b.call("GET", "/api/v1/contacts/export.csv").get_data(as_text=True)
    assert b.call("POST", "/api/v1/segments/count", json={"filter": {"status": "active"}}).json["count"] == 0
    assert b.call("GET", "/api/v1/workspace").json["name"] == "B"


def test_foreign_contact_cannot_join_own_group(pair):
    a, b, ids = pair
    own_group = b.call("POST", "/api/v1/groups", json={"name": "Mine"}).json["id"]
    response = b.call("POST", f"/api/v1/groups/{own_group}/members", json={"contact_ids": [ids["contact"]]})
    assert response.status_code == 422
    assert b.call("GET", f"/api/v1/groups/{own_group}").json["members"] == 0


def test_segment_on_foreign_group_matches_nothing(pair):
    a, b, ids = pair
    a.call("POST", f"/api/v1/groups/{ids['group']}/members", json={"contact_ids": [ids["contact"]]})
    b.call("POST", "/api/v1/contacts", json={"phone": "+48600100299"})
    count = b.call("POST", "/api/v1/segments/count", json={"filter": {"group": ids["group"]}}).json["count"]
    assert count == 0


def test_same_phone_may_live_in_two_workspaces(pair):
    a, b, _ = pair
    assert b.call("POST", "/api/v1/contacts", json={"phone": "+48600100200"}).status_code == 201
