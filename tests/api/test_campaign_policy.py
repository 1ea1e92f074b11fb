"""Campaign policy: content rules reject with the matched rule, the frequency policy and the send window
exclude or delay, and the throttle and ratios change while sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import prepare
from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    t = Tenant(rt, client)
    for i in range(6):
        t.call("POST", "/api/v1/contacts", json={"phone": f"+4860010020{i}", "attributes": {"first_name": "Ann"}})
    return t


def campaign(t: Tenant, **extra) -> int:
    body = {"name": "C", "audience": {"filter": {"status": "active"}}, "consent_category": "marketing",
            "variants": [{"text": "Hi {{ first_name }}"}], **extra}
    response = t.call("POST", "/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_content_rule_rejects_with_the_matched_rule_and_edit_returns_to_draft(t, run_jobs):
    assert t.call("POST", "/api/v1/content-rules", json={"kind": "word", "value": "kasyno"}).status_code == 201
    cid = campaign(t, variants=[{"text": "Nowe Kasyno online, {{ first_name }}!"}])
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    rejected = t.call("GET", f"/api/v1/campaigns/{cid}").json
    assert rejected["status"] == "rejected" and "kasyno" in rejected["status_reason"].lower()
    assert t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["total"] == 0
    edited = t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"variants": [{"text": "Sale, {{ first_name }}!"}]})
    assert edited.json["status"] == "draft" and edited.json["status_reason"] is None


def test_frequency_policy_excludes_contacts_over_the_limit(t, run_jobs):
    t.call("PATCH", "/api/v1/workspace", json={"settings": {"frequency": {"max": 1, "days": 7}}})
    first = campaign(t, audience={"filter": {"attr": "first_name", "value": "Ann"}})
    t.call("POST", f"/api/v1/campaigns/{first}/submit")
    run_jobs()
    assert t.call("GET", f"/api/v1/campaigns/{first}").json["recipients"] == 6
    second = campaign(t)
    # Every contact already had one marketing campaign this week: nobody is left.
    refused = t.call("POST", f"/api/v1/campaigns/{second}/submit")
    assert refused.status_code == 422 and "6 frequency" in refused.json["message"]
    other_category = campaign(t, consent_category="news")
    assert t.call("POST", f"/api/v1/campaigns/{other_category}/submit").status_code == 200


def test_send_window_delays_messages_to_the_recipients_morning():
    window = {"start": "09:00", "end": "20:00"}
    night = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Warsaw
    after = prepare.send_after("+48600100200", window, night)
    assert after == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 09:00 Warsaw (UTC+1 in November)
    noon = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert prepare.send_after("+48600100200", window, noon) is None
    assert prepare.send_after("+12125550123", window, noon) == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def test_messages_outside_the_window_wait(t, run_jobs, rt):
    cid = campaign(t, send_window={"start": "00:00", "end": "00:01"})
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    from core.models import Message

    with rt.sessions() as session:
        waits = [m.send_after for m in session.query(Message).filter(Message.campaign_id == cid)]
    assert len(waits) == 6
    assert all(w is None or w.replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(minutes=1) for w in waits)


def test_throttle_and_ratio_change_while_sending_but_text_does_not(t, run_jobs, rt):
    cid = campaign(t, variants=[{"name": "A", "ratio": 50, "text": "A {{ first_name }}"},
                                {"name": "B", "ratio": 50, "text": "B {{ first_name }}"}])
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()  # no provider: it suspends, with every message still waiting
    assert t.call("GET", f"/api/v1/campaigns/{cid}").json["status"] == "suspended"
    assert t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"throttle_per_hour": 120}).json["throttle_per_hour"] == 120
    assert t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"throttle_per_hour": 10}).status_code == 422
    changed = t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"ratios": {"A": 100, "B": 0}})
    assert changed.status_code == 200
    run_jobs()  # the retune job moves the waiting messages to the new ratios
    texts = [m["text"] for m in t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"]]
    assert texts == ["A Ann"] * 6
    refused = t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"variants": [{"name": "A", "text": "new"}]})
    assert refused.status_code == 409


def test_messages_a_lane_is_sending_keep_their_text_and_cannot_be_cancelled(t, run_jobs, rt):
    """A ratio change re-renders only the waiting messages no lane has leased; a leased one is being sent."""
    from core import db, dispatch

    cid = campaign(t, variants=[{"name": "A", "ratio": 50, "text": "A {{ first_name }}"},
                                {"name": "B", "ratio": 50, "text": "B {{ first_name }}"}])
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()  # no provider: it suspends, with every message still waiting
    before = {m["id"]: m["text"] for m in t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"]}
    assert sorted(before.values()) == ["A Ann"] * 3 + ["B Ann"] * 3
    with db.transaction(rt.sessions) as session:  # a lane mid-batch: it holds the three oldest
        leased = [m.id for m in dispatch.claim(session, cid, 3, 60).messages]
    assert "A Ann" in {before[mid] for mid in leased}  # one the change would re-render, were it not leased
    assert t.call("PATCH", f"/api/v1/campaigns/{cid}", json={"ratios": {"A": 0, "B": 100}}).status_code == 200
    run_jobs()
    after = {m["id"]: m["text"] for m in t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"]}
    assert {mid: after[mid] for mid in leased} == {mid: before[mid] for mid in leased}
    assert all(text == "B Ann" for mid, text in after.items() if mid not in leased)
    refused = t.call("DELETE", f"/api/v1/messages/{leased[0]}", role="editor")
    assert refused.status_code == 409 and "being sent" in refused.json["message"]
    free = next(mid for mid in after if mid not in leased)
    assert t.call("DELETE", f"/api/v1/messages/{free}", role="editor").json["status"] == "enqueue_failed"


def test_every_short_link_domain_at_its_limit_suspends_with_the_reason_until_one_is_added(t, run_jobs):
    assert t.call("POST", "/api/v1/links/domains", json={"host": "s.example", "message_limit": 2}).status_code == 201
    cid = campaign(t, variants=[{"text": "Hi {{ first_name }}: https://shop.example/sale"}])
    t.call("POST", f"/api/v1/campaigns/{cid}/submit")
    run_jobs()
    suspended = t.call("GET", f"/api/v1/campaigns/{cid}").json
    assert suspended["status"] == "suspended" and "limit" in suspended["status_reason"]
    assert t.call("POST", "/api/v1/links/domains", json={"host": "t.example"}).status_code == 201
    resumed = t.call("POST", f"/api/v1/campaigns/{cid}/resume")
    assert resumed.json["status"] == "processing"
    run_jobs()
    messages = t.call("GET", f"/api/v1/campaigns/{cid}/messages").json["items"]
    assert len(messages) == 6 and all("shop.example" not in m["text"] for m in messages)
    assert {m["text"].split("//")[1].split("/")[0] for m in messages} <= {"s.example", "t.example"}
