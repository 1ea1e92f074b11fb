"""Salesforce plugin throughput against the fake org (tests/fakes/salesforce.py on a local HTTP server).

Syncs N Contacts through core (`core.plugins.sync.run`: the query, every nextRecordsUrl page, merge_rows,
cursor per page), then writes N delivery events back (`core.plugins.outbox.flush`: Tasks upserted through
sObject Collections, 200 per call). Both run twice to count duplicates (an incremental re-sync; every outbox
row sent again). HTTP time is measured around each request in the client's transport adapter, so it includes
the fake server's own work: "our code" is everything else. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/salesforce_sync.py` from root

import requests  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402
from sqlalchemy import delete, func, insert, select, update  # noqa: E402

from core import db, migrations, redisdb, runtime, workspaces  # noqa: E402
from core.models import Contact, Message, PluginOutbox, Workspace  # noqa: E402
from core.plugins import connections, outbox, sync  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.fakes import salesforce as fake  # noqa: E402

FULL = 100_000
QUICK = 10_000
CHUNK = 5_000  # messages inserted / noted per transaction while setting up


class TimedAdapter(fake.LocalAdapter):
    """The fake's rewriting adapter, adding up the wall time spent waiting on each HTTP exchange."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.seconds = 0.0
        self.requests = 0

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        started = time.perf_counter()
        try:
            response = super().send(request, **kwargs)
            response.content  # noqa: B018 - read the body inside the timed section
            return response
        finally:
            self.seconds += time.perf_counter() - started
            self.requests += 1


def http_for(server: HTTPServer) -> tuple[requests.Session, TimedAdapter]:
    adapter = TimedAdapter(server.url_for("/"))
    session = requests.Session()
    session.mount("https://", adapter)
    return session, adapter


def setup(rt: runtime.Runtime, org: fake.FakeOrg, n: int) -> tuple[int, int]:
    org.add_people("Contact", n)
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, "bench-salesforce", "PL")
        connection = connections.connect(session, rt.settings, ws.id, "salesforce",
                                         fake.settings(objects=["Contact"], sync_segments=False))
        return ws.id, connection.id


def queue_events(rt: runtime.Runtime, workspace_id: int) -> int:
    """One delivered message per synced contact, noted for write-back as core/delivery.py notes them."""
    with rt.sessions() as session:
        people = session.execute(select(Contact.id, Contact.phone).where(Contact.workspace_id == workspace_id)
                                 .order_by(Contact.id)).all()
    queued = 0
    for start in range(0, len(people), CHUNK):
        chunk = people[start:start + CHUNK]
        with db.transaction(rt.sessions) as session:
            ids = session.scalars(insert(Message).returning(Message.id), [
                {"workspace_id": workspace_id, "contact_id": cid, "phone": phone, "text": "Your order has shipped",
                 "status": "delivered", "idempotency_key": f"bench-sf-{cid}"} for cid, phone in chunk]).all()
            queued += outbox.note_delivery(session, workspace_id, {mid: "delivered" for mid in ids})
    return queued


def timed(fn: Any, adapter: TimedAdapter) -> tuple[Any, float, float]:
    http_before = adapter.seconds
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started, adapter.seconds - http_before


def run(n: int, data_dir: Path) -> dict[str, Any]:
    settings = Settings.from_env({**os.environ, "SMSCONNECT_DATA_DIR": str(data_dir)})
    migrations.upgrade(settings.sqlalchemy_url)
    rt = runtime.configure(settings)
    server = HTTPServer()
    server.start()
    try:
        org = fake.FakeOrg().attach(server)
        http, adapter = http_for(server)
        workspace_id, cid = setup(rt, org, n)
        first, sync_s, sync_http = timed(lambda: sync.run(rt, cid, http=http), adapter)
        sync_calls = org.calls["query"] + org.calls["query_more"]
        print(f"sync: {first.created:,} created in {sync_s:.1f} s ({sync_calls} query calls)", file=sys.stderr)
        again = sync.run(rt, cid, http=http)
        queued = queue_events(rt, workspace_id)
        flushed, wb_s, wb_http = timed(lambda: outbox.flush(rt, cid, http=http), adapter)
        wb_calls = org.calls["composite"]
        print(f"write-back: {flushed.written:,} Tasks in {wb_s:.1f} s ({wb_calls} calls)", file=sys.stderr)
        with db.transaction(rt.sessions) as session:  # as if every batch's results had been lost
            session.execute(update(PluginOutbox).values(status="pending"))
        outbox.flush(rt, cid, http=http)
        with rt.sessions() as session:
            contacts = session.scalar(select(func.count()).select_from(Contact)
                                      .where(Contact.workspace_id == workspace_id)) or 0
        duplicates = (contacts - n) + (len(org.tasks()) - n) + again.created
        with db.transaction(rt.sessions) as session:
            session.execute(delete(Workspace).where(Workspace.id == workspace_id))
        name = rt.engine.dialect.name
    finally:
        server.stop()
        runtime.reset()
        if not settings.redis_url:
            redisdb.stop_embedded(data_dir)
    total_s, http_s = sync_s + wb_s, sync_http + wb_http
    return {
        "records": n,
        "writeback_calls_per_200": round(wb_calls / (n / 200), 3),
        "sync_calls_per_2000": round(sync_calls / (n / 2000), 3),
        "duplicates": duplicates,
        "records_per_s": round(2 * n / total_s),
        "sync_records_per_s": round(first.created / sync_s),
        "writeback_events_per_s": round(flushed.written / wb_s),
        "sync_seconds": round(sync_s, 1),
        "writeback_seconds": round(wb_s, 1),
        "our_code_share": round(1 - http_s / total_s, 3),
        "http_wait_share": round(http_s / total_s, 3),
        "logins": org.logins,
        "queued_events": queued,
        "database": name,
    }


def main(argv: Sequence[str] | None = None) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake server logs every request otherwise
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} records, not {FULL:,}")
    parser.add_argument("--records", type=int, help="number of records (overrides --quick)")
    args = parser.parse_args(argv)
    n = args.records or (QUICK if args.quick else FULL)
    with tempfile.TemporaryDirectory(prefix="bench-salesforce-") as tmp:
        figures = run(n, Path(tmp))
    ok = figures["duplicates"] == 0 and figures["writeback_calls_per_200"] <= 1 and figures["sync_calls_per_2000"] <= 1
    print(f"{n:,} records: sync {figures['sync_records_per_s']:,}/s, "
          f"write-back {figures['writeback_events_per_s']:,}/s, {figures['http_wait_share']:.0%} of the time waiting "
          f"on HTTP, {figures['duplicates']} duplicates")
    print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
