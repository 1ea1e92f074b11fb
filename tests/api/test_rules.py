"""Content rules API: create, list, delete, and check a text the way a campaign is checked."""

from __future__ import annotations

import pytest

from tests.factories import Tenant

URL = "/api/v1/content-rules"


@pytest.fixture
def t(client, rt) -> Tenant:
    return Tenant(rt, client)


def add(t: Tenant, kind: str, value: str, role: str = "admin"):
    return t.call("POST", URL, role, json={"kind": kind, "value": value})


def check(t: Tenant, text: str, role: str = "viewer"):
    response = t.call("POST", f"{URL}/check", role, json={"text": text})
    assert response.status_code == 200, response.json
    return response.json["match"]


def test_create_list_and_delete(t):
    created = add(t, "domain", "https://Bit.ly/abc")
    assert created.status_code == 201, created.json
    assert (created.json["kind"], created.json["value"]) == ("domain", "bit.ly")
    add(t, "word", "kasyno")
    add(t, "pattern", r"pożyczk\w*")
    listing = t.call("GET", URL, "viewer").json
    assert listing["total"] == 3
    assert [r["kind"] for r in t.call("GET", f"{URL}?kind=word").json["items"]] == ["word"]
    assert t.call("DELETE", f"{URL}/{created.json['id']}").status_code == 204
    assert t.call("GET", f"{URL}/{created.json['id']}").status_code == 404
    assert t.call("GET", URL).json["total"] == 2


def test_check_returns_the_match_with_its_reason(t):
    rule = add(t, "word", "kasyno").json
    match = check(t, "Wielkie otwarcie! Kasyno czeka.")
    assert match == {
        "rule_id": rule["id"], "kind": "word", "value": "kasyno", "matched": "Kasyno",
        "snippet": "Wielkie otwarcie! Kasyno czeka.", "reason": "blocked word 'kasyno' in text",
    }


@pytest.mark.parametrize(
    ("kind", "value", "hit", "miss"),
    [
        ("word", "kasyno", "KASYNO online", "nasze kasyna"),
        ("word", "zakłady", "zaklady bukmacherskie", "zakładka"),
        ("domain", "bit.ly", "https://x.bit.ly/a", "https://notbit.ly/a"),
        ("domain", "bit.ly", "bit.ly/abc", "bit.ly.example.com"),
        ("pattern", r"\d{2,}\s?% zniżki", "50 % ZNIŻKI", "5% zniżki"),
    ],
)
def test_check_matches_and_passes(t, kind, value, hit, miss):
    add(t, kind, value)
    assert check(t, hit)["kind"] == kind
    assert check(t, miss) is None


def test_text_without_rules_passes(t):
    assert check(t, "kasyno bit.ly") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "pattern", "value": "(unclosed"}, "value"),
        ({"kind": "pattern", "value": "(a+)+$"}, "value"),
        ({"kind": "pattern", "value": ".*"}, "value"),
        ({"kind": "domain", "value": "not a domain"}, "value"),
        ({"kind": "word", "value": ""}, "value"),
        ({"kind": "word", "value": "x" * 501}, "value"),
        ({"kind": "colour", "value": "red"}, "kind"),
        ({"value": "kasyno"}, "kind"),
    ],
)
def test_bad_rule_is_422_naming_the_field(t, body, field):
    response = t.call("POST", URL, json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]
    assert t.call("GET", URL).json["total"] == 0


def test_the_same_rule_twice_is_409(t):
    assert add(t, "word", "kasyno").status_code == 201
    assert add(t, "word", " kasyno ").status_code == 409


def test_only_admins_change_rules(t):
    rule = add(t, "word", "kasyno").json
    for role in ("viewer", "editor"):
        assert add(t, "word", "lotto", role).status_code == 403
        assert t.call("DELETE", f"{URL}/{rule['id']}", role).status_code == 403
    assert t.call("GET", URL, "viewer").json["total"] == 1
    assert check(t, "kasyno", "viewer") is not None


def test_another_workspace_sees_and_touches_nothing(client, rt):
    a, b = Tenant(rt, client, "A"), Tenant(rt, client, "B")
    rule = add(a, "word", "kasyno").json
    assert b.call("GET", URL).json["total"] == 0
    assert b.call("GET", f"{URL}/{rule['id']}").status_code == 404
    assert b.call("DELETE", f"{URL}/{rule['id']}").status_code == 404
    assert check(b, "kasyno") is None
    assert check(a, "kasyno") is not None
