"""The simulator end to end: send through the simulator provider, receive its signed reports on the live app."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from core import db, provider_accounts, providers, simulator
from core.models import Contact, Message, MessageEvent
from core.providers import OutboundSms
from core.runtime import Runtime
from tests.factories import make_contact, make_workspace
from tests.webhooks import make_account, make_message

SECRET = "e2e-secret-0123456789"


@pytest.fixture
def live_app(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def sim() -> Iterator[simulator.SimulatorHandle]:
    handle = simulator.start_in_thread(delay=0.1, secret=SECRET, seed=7,
                                       mix={"delivered": 0.6, "undelivered": 0.2, "error": 0.2})
    yield handle
    handle.stop()


def _store_results(rt: Runtime, results: list[Any], ids: dict[str, int]) -> None:
    """What dispatch does with results: keep the id, and move only still-waiting messages to sent."""
    with db.transaction(rt.sessions) as session:
        for result in results:
            if result.accepted:
                session.execute(update(Message).where(Message.id == ids[result.key])
                                .values(provider_message_id=result.provider_message_id))
                session.execute(update(Message).where(Message.id == ids[result.key], Message.status == "waiting")
                                .values(status="sent"))


def test_sends_are_deduplicated_and_signed_reports_reach_every_message(rt: Runtime, live_app: str,
                                                                      sim: simulator.SimulatorHandle) -> None:
    ws = make_workspace(rt)
    account = make_account(rt, ws.id, "simulator", {"url": sim.url, "secret": SECRET})
    messages = []
    for i in range(30):
        contact = make_contact(rt, ws, f"+486001003{i:02d}")
        messages.append(make_message(rt, ws.id, "simulator", None, "waiting", contact.id, f"e2e-{i}", contact.phone))
    ids = {m.idempotency_key: m.id for m in messages}
    callback = live_app + provider_accounts.webhook_path(account)
    provider = providers.build("simulator", provider_accounts.decrypted(rt.settings, account), requests.Session(),
                               callback)
    batch = [OutboundSms(m.id, m.idempotency_key, m.phone, "ACME", "Hi!", 1) for m in messages]
    results = provider.send([*batch, OutboundSms(0, "e2e-bad", "+1", "ACME", "Hi!", 1)])
    assert [r.accepted for r in results] == [True] * 30 + [False]
    _store_results(rt, results[:30], ids)
    again = provider.send(batch[:10])  # a worker re-sending after a crash
    assert [r.provider_message_id for r in again] == [r.provider_message_id for r in results[:10]]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rt.sessions() as session:
            pending = session.scalar(select(func.count()).where(Message.workspace_id == ws.id,
                                                                Message.status.in_(("waiting", "sent"))))
        # The simulator counts a batch as sent when our answer reaches it, a moment after our commit.
        if pending == 0 and sim.stats()["reports_sent"] == 30:
            break
        time.sleep(0.05)
    assert pending == 0

    stats = sim.stats()
    assert (stats["received"], stats["unique"], stats["duplicates"], stats["rejected"]) == (41, 30, 10, 1)
    assert stats["reports_sent"] == 30 and stats["reports_failed"] == 0
    with rt.sessions() as session:
        by_status = dict(session.execute(select(Message.status, func.count()).where(Message.workspace_id == ws.id)
                                         .group_by(Message.status)).all())
        event_count = session.scalar(select(func.count()).select_from(MessageEvent))
        archived = session.scalar(select(func.count()).where(Contact.workspace_id == ws.id,
                                                             Contact.status == "archived"))
        stored = dict(session.execute(select(Message.idempotency_key, Message.provider_message_id)
                                      .where(Message.workspace_id == ws.id)).all())
    assert set(by_status) <= {"delivered", "undelivered", "error"} and by_status.get("delivered", 0) > 0
    assert event_count == 30  # one per message: re-sends were never reported twice
    assert archived == by_status.get("error", 0) > 0
    assert stored == {r.key: r.provider_message_id for r in results[:30]}
