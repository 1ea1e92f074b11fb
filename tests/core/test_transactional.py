"""Transactional sending end to end through the simulator: sent once with delivery events, an
Idempotency-Key replay sends nothing again, priority over a running campaign, dead workers' claims given
back, validity and send_at honoured, and `smsconnect send` from a shell."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from connector.cli import main
from core import db, provider_accounts, transactional
from core.models import Message, Workspace
from tests.conftest import burst
from tests.core import test_dispatch
from tests.core.test_dispatch import setup_campaign, wait_for
from tests.factories import Tenant

live = test_dispatch.live  # the app on a real port and a simulator


def tenant(app, rt, sim) -> Tenant:
    t = Tenant(rt, app.test_client())
    with db.transaction(rt.sessions) as session:
        provider_accounts.create_account(session, rt.settings, t.ws.id, "simulator",
                                         {"url": sim.url, "secret": "sim-secret"}, is_default=True)
    return t


def status_of(rt, message_id: int) -> str:
    with rt.sessions() as session:
        return session.get(Message, message_id).status


def test_sent_once_with_delivery_events_and_replay_sends_nothing(live):
    app, rt, sim, _ = live
    t = tenant(app, rt, sim)
    body = [{"to": f"+4860040000{i}", "text": f"code {i}"} for i in range(3)]
    first = t.call("POST", "/api/v1/messages", json=body, headers={"Idempotency-Key": "crm-42"}).json
    burst(rt)
    assert sim.stats()["unique"] == 3
    again = t.call("POST", "/api/v1/messages", json=body, headers={"Idempotency-Key": "crm-42"})
    assert again.status_code == 202 and again.json == first
    burst(rt)
    assert sim.stats() | {} and sim.stats()["unique"] == 3 and sim.stats()["received"] == 3
    mid = first["messages"][0]["id"]
    wait_for(lambda: status_of(rt, mid) not in ("waiting", "sent"), timeout=10)
    detail = t.call("GET", f"/api/v1/messages/{mid}").json
    assert detail["message"]["provider_message_id"] and detail["message"]["sent_at"]
    assert detail["events"] and detail["events"][-1]["status"] == detail["message"]["status"]
    assert detail["events"][-1]["provider_status"]


def test_a_workspace_throttle_of_one_a_second_never_puts_two_in_one_second(live):
    app, rt, sim, _ = live
    t = tenant(app, rt, sim)
    with db.transaction(rt.sessions) as session:
        ws = session.get(Workspace, t.ws.id)
        ws.settings = {**(ws.settings or {}), "transactional_per_hour": 3600}
    body = [{"to": f"+4860050000{i}", "text": f"code {i}"} for i in range(3)]
    assert t.call("POST", "/api/v1/messages", json=body).status_code == 202
    burst(rt)
    times = sorted(r["mono"] for r in sim.simulator.log()["records"])
    assert len(times) == 3 and all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False))


def test_transactional_messages_overtake_a_running_campaign(live):
    app, rt, sim, _ = live
    t, cid = setup_campaign(app, rt, sim, n=6, throttle=200000)
    assert t.call("POST", f"/api/v1/campaigns/{cid}/submit").status_code == 200
    r = t.call("POST", "/api/v1/messages", json={"to": "+48600499999", "text": "Your code is 0000"})
    assert r.json["messages"][0]["status"] == "accepted"
    burst(rt)  # one worker: it takes the transactional queue before the campaign's jobs
    wait_for(lambda: sim.stats()["unique"] >= 1)
    records = sim.simulator.log()["records"]
    assert records[0]["to"] == "+48600499999"


def test_dead_workers_claims_are_given_back_and_sent_once(live):
    app, rt, sim, _ = live
    t = tenant(app, rt, sim)
    ids = [m["id"] for m in t.call("POST", "/api/v1/messages", json=[
        {"to": f"+4860041000{i}", "text": "x"} for i in range(4)]).json["messages"]]
    rt.redis.flushdb()  # the queued job is lost with its worker
    with db.transaction(rt.sessions) as session:
        claimed = transactional.claim(session, t.ws.id, 10, lease_s=0.05)  # a worker that then dies
    assert len(claimed) == 4
    time.sleep(0.1)
    report = transactional.recover(rt)
    assert report["released"] == 4 and report["kicked"] == 1
    burst(rt)
    assert sim.stats()["unique"] == 4 and sim.stats()["duplicates"] == 0
    assert all(status_of(rt, mid) != "waiting" for mid in ids)


def test_validity_and_send_at_are_honoured(live):
    app, rt, sim, _ = live
    t = tenant(app, rt, sim)
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    old, scheduled = (m["id"] for m in t.call("POST", "/api/v1/messages", json=[
        {"to": "+48600420000", "text": "stale", "validity": 60},
        {"to": "+48600420001", "text": "later", "send_at": later}]).json["messages"])
    with db.transaction(rt.sessions) as session:
        session.get(Message, old).created_at = datetime.now(UTC) - timedelta(minutes=2)
    burst(rt)
    assert status_of(rt, old) == "expired" and status_of(rt, scheduled) == "waiting"
    assert sim.stats()["received"] == 0
    with db.transaction(rt.sessions) as session:  # time passes
        session.get(Message, scheduled).send_after = datetime.now(UTC) - timedelta(seconds=1)
    assert transactional.recover(rt)["kicked"] == 1
    burst(rt)
    assert sim.stats()["unique"] == 1 and status_of(rt, scheduled) != "waiting"


def test_cli_send_prints_the_id_and_waits_for_the_final_status(live, cli_env):
    app, rt, sim, base = live
    cli_env.setenv("SMSCONNECT_BASE_URL", base)
    t = tenant(app, rt, sim)
    t.call("POST", "/api/v1/templates", json={"name": "otp", "text": "Code {{ code }}"})
    runner = CliRunner()
    worker_rt = app.extensions["smsconnect"]
    stop = threading.Event()

    def work() -> None:  # what a worker does with the queued job (a burst worker needs the main thread)
        while not stop.is_set():
            transactional.run(worker_rt, t.ws.id)
            time.sleep(0.05)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        result = runner.invoke(main, ["send", "--workspace", str(t.ws.id), "--to", "600 430 000", "--template", "otp",
                                      "--var", "code=77", "--wait", "--timeout", "15"], catch_exceptions=False)
    finally:
        stop.set()
        thread.join(10)
    assert result.stdout.splitlines()[0].isdigit(), result.output
    assert result.stdout.splitlines()[-1].split(":")[0] in ("delivered", "undelivered", "error")
    with rt.sessions() as session:
        message = session.get(Message, int(result.stdout.splitlines()[0]))
        assert message.text == "Code 77" and message.source == "cli"


BAD_SENDS = [
    ["--to", "not a number", "--text", "x"],
    ["--to", "+48600100200", "--template", "nope"],
    ["--to", "+48600100200"],
    ["--to", "+48600100200", "--text", "x", "--var", "novalue"],
]


def test_cli_send_bad_input_exits_2(client, rt, cli_env):
    t = Tenant(rt, client)
    for args in BAD_SENDS:
        result = CliRunner().invoke(main, ["send", "--workspace", str(t.ws.id), *args], catch_exceptions=False)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
