"""Processing in parts: a large audience is prepared by several RQ jobs side by side, each message once."""

from __future__ import annotations

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from core import processing, queues, runner
from core.models import Campaign, Contact, Message
from tests.factories import Tenant

N = 25


@pytest.fixture
def settings(base_settings):
    return base_settings.with_overrides(prepare_parts=3, prepare_part_min=5)


@pytest.fixture
def t(client, rt) -> Tenant:
    t = Tenant(rt, client)
    for i in range(N):
        t.call("POST", "/api/v1/contacts", json={"phone": f"+4860040{i:04d}", "attributes": {"first_name": f"P{i}"}})
    return t


def submit(t: Tenant) -> int:
    body = {"name": "Parts", "sender_id": "Shop", "audience": {"filter": {"status": "active"}},
            "consent_category": None, "schedule_at": "2099-01-01T09:00:00Z",
            "variants": [{"name": "A", "ratio": 50, "text": "A {{ first_name }} https://shop.example/a"},
                         {"name": "B", "ratio": 50, "text": "B {{ first_name }} https://shop.example/b"}]}
    cid = t.call("POST", "/api/v1/campaigns", json=body).json["id"]
    assert t.call("POST", f"/api/v1/campaigns/{cid}/submit").status_code == 200
    return cid


def messages(rt, cid: int) -> list[Message]:
    with rt.sessions() as session:
        return list(session.scalars(select(Message).where(Message.campaign_id == cid)))


def test_a_large_audience_is_prepared_by_three_jobs_each_recipient_once(t, rt, run_jobs):
    cid = submit(t)
    run_jobs()
    campaign = t.call("GET", f"/api/v1/campaigns/{cid}").json
    assert campaign["status"] == "scheduled"
    with rt.sessions() as session:
        plan = session.get(Campaign, cid).prepare_plan
    assert len(plan) == 2  # parts 1 and 2 begin at these contact ids; part 0 ran in the Processing job
    for part in (1, 2):
        job = Job.fetch(f"prepare-{cid}-{part}", connection=rt.redis, serializer=JSONSerializer)
        assert job.get_status().value == "finished"
    rows = messages(rt, cid)
    assert len(rows) == N == len({m.contact_id for m in rows}) == campaign["recipients"]
    assert not [m.text for m in rows if "shop.example" in m.text]  # every link shortened, in every part
    variants = [sum(1 for m in rows if m.text.startswith(name)) for name in ("A", "B")]
    assert abs(variants[0] - variants[1]) <= 3  # the smooth split holds within each part (± 1 each)


def test_parts_resume_after_a_crash_and_finish_once(t, rt, run_jobs):
    cid = submit(t)
    # The worker runs the Processing job (part 0) and dies before taking parts 1 and 2 from the queue.
    processing.process(rt, cid)
    with rt.sessions() as session:
        assert session.get(Campaign, cid).status == "processing"
        first = session.scalar(select(func.count()).where(Message.campaign_id == cid))
    assert 0 < first < N
    # The sweep sees the parts still queued: it does not start the whole job again.
    assert runner.recover(rt)["processing"] == 0
    # A part that had crashed half-way is run again by hand: it continues, never repeats.
    processing.prepare_part(rt, cid, 1)
    run_jobs()
    rows = messages(rt, cid)
    assert len(rows) == N == len({m.idempotency_key for m in rows})
    with rt.sessions() as session:
        campaign = session.get(Campaign, cid)
        assert (campaign.status, campaign.recipients) == ("scheduled", N)
    assert not rt.redis.exists(processing.DONE_KEY.format(cid))
    assert queues.processing_active(rt.redis, cid, 3) is False


def test_a_list_of_more_contact_ids_than_a_statement_takes_parameters_is_prepared(t, rt, run_jobs):
    """PostgreSQL takes at most 65,535 parameters a statement; a list of 70,000 ids (most of them unknown here)
    once stopped Processing. It freezes to the known contacts, each once, however often the list names them."""
    with rt.sessions() as session:
        known = sorted(session.scalars(select(Contact.id)))[:10]
    ids = known + known[:3] + list(range(10**9, 10**9 + 70_000))
    body = {"name": "Ids", "sender_id": "Shop", "audience": {"contact_ids": ids}, "consent_category": None,
            "schedule_at": "2099-01-01T09:00:00Z", "variants": [{"name": "A", "ratio": 100, "text": "Hi"}]}
    cid = t.call("POST", "/api/v1/campaigns", json=body).json["id"]
    assert t.call("POST", f"/api/v1/campaigns/{cid}/submit").status_code == 200
    run_jobs()
    campaign = t.call("GET", f"/api/v1/campaigns/{cid}").json
    assert campaign["status"] == "scheduled" and campaign["recipients"] == 10
    assert sorted(m.contact_id for m in messages(rt, cid)) == known
