"""Write-back through the outbox: Tasks via sObject Collections, idempotent, per-record failures kept."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from core import db
from core.models import Message, PluginOutbox
from core.plugins import outbox, sync
from core.runtime import Runtime
from tests.fakes import salesforce as fake


def synced(rt: Runtime, org: fake.FakeOrg, connect: Any, people: int = 5, **extra: Any) -> tuple[Any, int]:
    org.add_people("Contact", people)
    ws, cid = connect(objects=["Contact"], sync_segments=False, **extra)
    sync.run(rt, cid)
    return ws, cid


def deliver(rt: Runtime, ws_id: int, phones: list[str], status: str = "delivered") -> list[int]:
    """Messages to these phones, reported with `status` (as core/delivery.py's hook reports them)."""
    from core.models import Contact

    with db.transaction(rt.sessions) as session:
        by_phone = dict(session.execute(select(Contact.phone, Contact.id).where(Contact.workspace_id == ws_id,
                                                                                Contact.phone.in_(phones))).all())
        messages = [Message(workspace_id=ws_id, contact_id=by_phone.get(phone), phone=phone, text=f"Hello {phone}",
                            status=status, idempotency_key=f"k-{phone}-{status}") for phone in phones]
        session.add_all(messages)
        session.flush()
        ids = [m.id for m in messages]
        outbox.note_delivery(session, ws_id, {mid: status for mid in ids})
    return ids


def rows(rt: Runtime) -> list[PluginOutbox]:
    with rt.sessions() as session:
        return list(session.scalars(select(PluginOutbox).order_by(PluginOutbox.id)))


def test_delivery_events_become_completed_tasks(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect)
    deliver(rt, ws.id, ["+48600000001", "+48600000002"])
    result = outbox.flush(rt, cid)
    assert (result.calls, result.written, result.failed) == (1, 2, 0)
    task = next(t for t in org.tasks() if t["WhoId"] == fake.sf_id("003", 1))
    assert task["Status"] == "Completed"
    assert task["Subject"] == "SMS delivered" and "Hello +48600000001" in task["Description"]
    assert task["SMS_Event_Id__c"].startswith("msg-") and task["ActivityDate"]
    assert all(r.status == "done" and r.remote_id for r in rows(rt))


def test_writing_back_twice_creates_no_duplicate_tasks(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect)
    ids = deliver(rt, ws.id, ["+48600000001", "+48600000002", "+48600000003"])
    with db.transaction(rt.sessions) as session:
        assert outbox.note_delivery(session, ws.id, {mid: "delivered" for mid in ids}) == 0  # already queued
    outbox.flush(rt, cid)
    with db.transaction(rt.sessions) as session:  # as if the worker died before storing the results
        session.execute(update(PluginOutbox).values(status="pending"))
    outbox.flush(rt, cid)
    assert len(org.tasks()) == 3


def test_lookup_mode_without_the_package_is_idempotent_too(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect, task_id_field=None)
    deliver(rt, ws.id, ["+48600000001", "+48600000002"])
    outbox.flush(rt, cid)
    with db.transaction(rt.sessions) as session:
        session.execute(update(PluginOutbox).values(status="pending"))
    outbox.flush(rt, cid)
    assert len(org.tasks()) == 2 and all(t["CallObject"].startswith("msg-") for t in org.tasks())


def test_batches_of_200_take_one_call_each(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect, people=450)
    deliver(rt, ws.id, [f"+4860{n:07d}" for n in range(450)])
    result = outbox.flush(rt, cid)
    assert (result.calls, org.calls["composite"], result.written) == (3, 3, 450)


def test_one_failing_record_is_kept_visible_and_retried_later(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect)
    org.bad_who_ids = {fake.sf_id("003", 2)}
    deliver(rt, ws.id, ["+48600000001", "+48600000002", "+48600000003"])
    result = outbox.flush(rt, cid)
    assert (result.written, result.failed) == (2, 1)
    failed = [r for r in rows(rt) if r.status != "done"]
    assert len(failed) == 1 and "MALFORMED_ID" in failed[0].last_error and failed[0].status == "pending"
    assert outbox.flush(rt, cid).calls == 0  # its next attempt is a minute away
    with rt.sessions() as session:
        shown = outbox.failures(session, cid)
    assert shown[0]["record_id"] == fake.sf_id("003", 2) and shown[0]["attempts"] == 1
    with db.transaction(rt.sessions) as session:  # exhaust the attempts
        session.execute(update(PluginOutbox).values(attempts=outbox.MAX_ATTEMPTS - 1, next_attempt_at=failed[0].at))
    outbox.flush(rt, cid)
    assert [r.status for r in rows(rt) if r.id == failed[0].id] == ["failed"]
    org.bad_who_ids = set()
    with db.transaction(rt.sessions) as session:
        assert outbox.retry_failed(session, cid) == 1
    assert outbox.flush(rt, cid).written == 1


def test_request_limit_pauses_the_write_back(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect)
    deliver(rt, ws.id, ["+48600000001"])
    org.limit_exceeded = True
    result = outbox.flush(rt, cid)
    assert result.paused and result.calls == 0
    assert rt.redis.ttl(outbox.PAUSE_KEY.format(id=cid)) > 3000
    assert [r.status for r in rows(rt)] == ["pending"]
    org.limit_exceeded = False
    assert outbox.flush(rt, cid).paused  # still backing off: no call spent
    rt.redis.delete(outbox.PAUSE_KEY.format(id=cid))
    assert outbox.flush(rt, cid).written == 1


def test_opt_out_writes_a_task_and_ticks_the_opt_out_field(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    ws, cid = synced(rt, org, connect)
    from core.models import Contact

    with db.transaction(rt.sessions) as session:
        contact_id = session.scalar(select(Contact.id).where(Contact.phone == "+48600000004"))
        assert outbox.note_opt_out(session, ws.id, contact_id, "marketing") == 1
    outbox.flush(rt, cid)
    person = next(r for r in org.rows["Contact"] if r["Id"] == fake.sf_id("003", 4))
    assert person["SMS_Opt_Out__c"] is True
    assert org.tasks()[0]["Subject"] == "SMS opt-out"


def test_periodic_job_flushes_through_the_worker(rt: Runtime, org: fake.FakeOrg, connect, run_jobs) -> None:
    from core import jobs

    ws, cid = synced(rt, org, connect)
    deliver(rt, ws.id, ["+48600000001"], status="undelivered")
    assert jobs.flush_plugin_outboxes() == 1
    run_jobs()
    assert org.tasks()[0]["Subject"] == "SMS failed" and [r.status for r in rows(rt)] == ["done"]


def test_contacts_unknown_to_the_crm_queue_nothing(rt: Runtime, org: fake.FakeOrg, connect) -> None:
    from tests.factories import make_contact

    ws, _ = synced(rt, org, connect)
    make_contact(rt, ws, "+48500100200")
    deliver(rt, ws.id, ["+48500100200"])
    assert rows(rt) == []


def test_a_human_click_on_a_message_link_is_queued_once_and_bots_are_not(rt: Runtime, org: fake.FakeOrg,
                                                                         connect) -> None:
    from datetime import timedelta

    from core import clicks
    from core.models import ShortLink
    from core.models.base import utcnow

    ws, _ = synced(rt, org, connect, people=2)
    [mid] = deliver(rt, ws.id, [org_phone(rt, ws.id)])
    with db.transaction(rt.sessions) as session:
        message = session.get(Message, mid)
        link = ShortLink(token="Tok12345", workspace_id=ws.id, target_url="https://shop.example/",
                         contact_id=message.contact_id, message_id=mid, identity_mode="never",
                         expires_at=utcnow() + timedelta(days=1))
        session.add(link)
    entries = [(f"{1_700_000_000_000 + i}-0", {b"h": f"Tok12345\t{bot}\t\tagent".encode()})
               for i, bot in enumerate(("0", "1", "0"))]
    with db.transaction(rt.sessions) as session:
        assert clicks.store(session, entries) == 3
    kinds = [r.kind for r in rows(rt)]
    assert kinds.count("clicked") == 1  # two human clicks, one activity; the bot hit writes nothing


def org_phone(rt: Runtime, ws_id: int) -> str:
    from core.models import Contact

    with rt.sessions() as session:
        return session.scalar(select(Contact.phone).where(Contact.workspace_id == ws_id).limit(1)) or ""
