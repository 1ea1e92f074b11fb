"""Plugin fixtures: a fake Salesforce org on the test HTTP server, reached through a rewriting session."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from core import db
from core.models import PluginConnection
from core.plugins import connections
from core.runtime import Runtime
from tests.factories import make_workspace
from tests.fakes import salesforce as fake


@pytest.fixture
def org(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> fake.FakeOrg:
    """The fake org; every plugin built by core talks to it."""
    found = fake.FakeOrg().attach(httpserver)
    monkeypatch.setattr(connections, "new_http", lambda: fake.local_session(httpserver))
    return found


@pytest.fixture
def connect(rt: Runtime, org: fake.FakeOrg) -> Any:
    """Creates a workspace connected to the fake org; returns (workspace, connection id)."""

    def make(**extra: Any) -> tuple[Any, int]:
        ws = make_workspace(rt)
        with db.transaction(rt.sessions) as session:
            connection = connections.connect(session, rt.settings, ws.id, "salesforce", fake.settings(**extra))
            return ws, connection.id

    return make


def connection(rt: Runtime, connection_id: int) -> PluginConnection:
    with rt.sessions() as session:
        found = session.get(PluginConnection, connection_id)
        assert found is not None
        return found


def perform_queued(rt: Runtime) -> int:
    """Runs the queued jobs in this process without starting a worker (a burst worker costs ~1 s)."""
    from core import queues

    done = 0
    while True:
        found = [(q, job) for q in (queues.queue(rt.redis, name) for name in queues.ALL) for job in q.jobs]
        if not found:
            return done
        for queue, job in found:  # jobs may queue more jobs (a started campaign queues its processing)
            queue.remove(job)
            job.perform()
            done += 1
