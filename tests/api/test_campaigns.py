"""Campaigns: steps and validation, the audience frozen with exclusions, messages prepared per recipient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    t = Tenant(rt, client)
    people = [
        ("+48600100200", {"first_name": "Anna", "language": "pl"}, True, "active"),
        ("+48600100201", {"first_name": "Łukasz"}, True, "active"),
        ("+48600100202", {"first_name": "Piotr"}, False, "active"),
        ("+48600100203", {"first_name": "Ola"}, True, "blocked"),
        ("+48600100204", {}, True, "active"),
        ("+48600100205", {"first_name": "Ewa"}, True, "archived"),
    ]
    for phone, attrs, consent, status in people:
        t.call("POST", "/api/v1/contacts", json={"phone": phone, "attributes": attrs, "status": status,
                                                 "consents": {"marketing": {"opted_in": consent}}})
    t.group = t.call("POST", "/api/v1/groups", json={"name": "All"}).json["id"]
    ids = [c["id"] for c in t.call("GET", "/api/v1/contacts").json["items"]]
    t.call("POST", f"/api/v1/groups/{t.group}/members", json={"contact_ids": ids})
    return t


def create(t: Tenant, **overrides):
    body = {"name": "Spring sale", "sender_id": "Shop", "audience": {"groups": [t.group]},
            "variants": [{"text": "Hi {{ first_name }}, -20% today!"}], **overrides}
    return t.call("POST", "/api/v1/campaigns", "editor", json=body)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sender_id": "TooLongSender1"}, "sender_id"),
        ({"sender_id": "12345"}, "sender_id"),
        ({"sender_id": "+48 12"}, "sender_id"),
        ({"throttle_per_hour": 59}, "throttle_per_hour"),
        ({"throttle_per_hour": 200001}, "throttle_per_hour"),
        ({"max_parts": 9}, "max_parts"),
        ({"schedule_at": "2020-01-01T00:00:00Z"}, "schedule_at"),
        ({"variants": [{"name": "A", "ratio": 60, "text": "a"}, {"name": "B", "ratio": 30, "text": "b"}]}, "variants"),
        ({"variants": [{"text": "Hi {{ shoe_size }}"}]}, "variants[0].text"),
        ({"variants": [{"text": "Hi {{ first_name "}]}, "variants[0].text"),
        ({"variants": [{"text": "{{ ''.__class__ }}"}]}, "variants[0].text"),
        ({"audience": {"groups": [999999]}}, None),
        ({"send_window": {"start": "20:00", "end": "09:00"}}, "send_window"),
        ({"budget_cap": "-1"}, "budget_cap"),
    ],
)
def test_bad_settings_are_422_naming_the_field(t, overrides, field):
    response = create(t, **overrides)
    if field is None:
        assert response.status_code == 404
        return
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"], response.json


def test_unknown_variable_with_a_default_is_fine_and_e164_sender_too(t):
    response = create(t, sender_id="+48500100200", variants=[{"text": "Hi {{ nick | default('you') }}"}])
    assert response.status_code == 201
    assert response.json["sender_id"] == "+48500100200" and response.json["status"] == "draft"
    assert "submit" in response.json["actions"]


def test_draft_without_audience_cannot_be_submitted(t):
    cid = t.call("POST", "/api/v1/campaigns", json={"name": "x", "variants": [{"text": "hi"}]}).json["id"]
    response = t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    assert response.status_code == 409 and "audience" in response.json["message"]


def test_empty_audience_is_422(t):
    seg = t.call("POST", "/api/v1/segments", json={"name": "none", "filter": {"attr": "city", "value": "Oslo"}}).json
    cid = create(t, audience={"segments": [seg["id"]]}).json["id"]
    response = t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    assert response.status_code == 422 and "audience" in response.json["errors"]["json"]


def test_processing_freezes_audience_with_exclusions_and_prepares_messages(t, run_jobs, rt):
    seg = t.call("POST", "/api/v1/segments", json={"name": "pl", "filter": {"attr": "language", "value": "pl"}}).json
    cid = create(t, audience={"groups": [t.group], "segments": [seg["id"]]}).json["id"]
    submitted = t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    assert submitted.status_code == 200 and submitted.json["status"] == "processing"
    assert t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"name": "renamed"}).status_code == 409
    run_jobs()
    campaign = t.call("GET", f"/api/v1/campaigns/{cid}").json
    assert campaign["excluded"] == {"blocked": 1, "archived": 1, "opted_out": 1, "duplicate": 1}
    assert campaign["recipients"] == 3
    messages = {m["phone"]: m for m in t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"]}
    assert messages["+48600100200"]["text"] == "Hi Anna, -20% today!"
    assert messages["+48600100200"]["encoding"] == "GSM-7" and messages["+48600100200"]["parts"] == 1
    assert messages["+48600100201"]["encoding"] == "UCS-2"  # Ł in the name
    failed = messages["+48600100204"]
    assert failed["status"] == "enqueue_failed" and "first_name" in failed["reason"]
    # No SMS provider is configured yet: the system suspends the campaign and says why.
    assert campaign["status"] == "suspended" and "provider" in campaign["status_reason"]


def test_message_over_max_parts_is_enqueue_failed_never_cut(t, run_jobs):
    cid = create(t, max_parts=1, audience={"contact_ids": [
        c["id"] for c in t.call("GET", "/api/v1/contacts?phone=600100200").json["items"]]},
        variants=[{"text": "{{ first_name }} " + "x" * 160}]).json["id"]
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    message = t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"][0]
    assert message["status"] == "enqueue_failed" and "max_parts 1" in message["reason"]
    assert message["text"].endswith("x" * 160)


def test_variants_split_by_ratio_and_language_versions(t, run_jobs, client, rt):
    for i in range(20):
        t.call("POST", "/api/v1/contacts", json={"phone": f"+4860020{i:04d}", "attributes": {"first_name": "N"}})
    everyone = {"filter": {"status": "active"}}
    cid = create(t, audience=everyone, variants=[
        {"name": "A", "ratio": 75, "text": "A {{ first_name | default('') }}", "languages": {"pl": "Cześć A"}},
        {"name": "B", "ratio": 25, "text": "B {{ first_name | default('') }}"},
    ], consent_category=None).json["id"]
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    campaign = t.call("GET", f"/api/v1/campaigns/{cid}").json
    ids = {v["name"]: v["id"] for v in campaign["variants"]}
    items = t.call("GET", f"/api/v1/campaigns/{cid}/messages?page_size=100").json["items"]
    counts = {name: sum(1 for m in items if m["variant_id"] == vid) for name, vid in ids.items()}
    assert len(items) == 24 and counts == {"A": 18, "B": 6}
    anna = next(m for m in items if m["phone"] == "+48600100200")
    assert anna["text"] in ("Cześć A", "B Anna")


def test_scheduled_campaign_waits_until_due(t, run_jobs):
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    cid = create(t, schedule_at=later).json["id"]
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    assert t.call("GET", f"/api/v1/campaigns/{cid}").json["status"] == "scheduled"
    assert t.call("POST", f"/api/v1/campaigns/{cid}/pause").json["status"] == "paused"
    assert t.call("POST", f"/api/v1/campaigns/{cid}/resume").json["status"] == "scheduled"
    assert t.call("POST", f"/api/v1/campaigns/{cid}/submit").status_code == 409


def test_duplicate_makes_a_draft_also_in_another_workspace(t, client, rt):
    cid = create(t).json["id"]
    t.call("POST", f"/api/v1/campaigns/{cid}/abort")
    same = t.call("POST", f"/api/v1/campaigns/{cid}/duplicate", json={})
    assert same.status_code == 201 and same.json["status"] == "draft" and same.json["audience"]["groups"]
    other = Tenant(rt, client, "Other")
    headers = {"X-Target-Workspace-Key": other.keys["editor"]}
    copied = t.call("POST", f"/api/v1/campaigns/{cid}/duplicate", json={}, headers=headers)
    assert copied.status_code == 201
    assert other.call("GET", f"/api/v1/campaigns/{copied.json['id']}").json["audience"] == {}
    assert t.call("GET", f"/api/v1/campaigns/{copied.json['id']}").status_code == 404
    viewer = {"X-Target-Workspace-Key": other.keys["viewer"]}
    assert t.call("POST", f"/api/v1/campaigns/{cid}/duplicate", json={}, headers=viewer).status_code == 403


def test_delete_in_any_status_and_viewer_cannot(t, run_jobs):
    cid = create(t).json["id"]
    assert t.call("DELETE", f"/api/v1/campaigns/{cid}", "viewer").status_code == 403
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    assert t.call("DELETE", f"/api/v1/campaigns/{cid}").status_code == 204
    assert t.call("GET", f"/api/v1/campaigns/{cid}").status_code == 404
    run_jobs()  # the queued job finds nothing to do


def test_other_workspace_cannot_see_or_act_on_a_campaign(t, client, rt):
    cid = create(t).json["id"]
    other = Tenant(rt, client, "Other")
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/submit"), ("POST", "/pause"),
                         ("POST", "/resume"), ("POST", "/abort"), ("POST", "/duplicate"), ("GET", "/report"),
                         ("GET", "/messages"), ("POST", "/archive-errors")]:
        response = other.call(method, f"/api/v1/campaigns/{cid}{path}", json={} if method != "GET" else None)
        assert response.status_code == 404, (method, path)
    assert other.call("GET", "/api/v1/campaigns").json["total"] == 0
    assert t.call("GET", f"/api/v1/campaigns/{cid}").json["status"] == "draft"
