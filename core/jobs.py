"""Every RQ job: ids in, one core call. Workers configure the runtime from the environment."""

from __future__ import annotations

import os
import socket

from core import clicks, contacts, imports, runtime


def run_import(import_id: int) -> None:
    rt = runtime.current()
    imports.run_import(
        rt.sessions, import_id, rt.settings.import_batch_rows, rt.settings.import_parallel_min_rows
    )


def purge_deleted_contacts() -> int:
    """Erases contacts soft-deleted longer ago than the retention period (runs hourly)."""
    rt = runtime.current()
    total = 0
    while True:
        with rt.sessions() as session, session.begin():
            n = contacts.purge_deleted(session, rt.settings.deleted_retention_days)
        total += n
        if n == 0:
            return total


def consume_clicks() -> int:
    """Moves recorded short-link hits from the Redis stream into the database; returns how many.

    `smsconnect cron` queues it every few seconds (PERIODIC in connector/cli/run.py). Entries wait in
    the stream while no worker runs, so a late run loses nothing; see core/clicks.py for why a crashed
    run never counts twice.
    """
    rt = runtime.current()
    return clicks.consume(rt.sessions, rt.redis, consumer=f"{socket.gethostname()}-{os.getpid()}")


def process_campaign(campaign_id: int) -> None:
    """Processing: freeze the audience and prepare every message (see core/processing.py)."""
    from core import processing

    processing.process(runtime.current(), campaign_id)


def prepare_part(campaign_id: int, part: int) -> None:
    """One more part of a large campaign's Processing, beside the job's own (see core/processing.py)."""
    from core import processing

    processing.prepare_part(runtime.current(), campaign_id, part)


def dispatch_lane(campaign_id: int, lane: int) -> None:
    from core import runner

    runner.run_lane(runtime.current(), campaign_id, lane)


def recover_campaigns() -> dict[str, int]:
    """Every few seconds: start due campaigns, give back dead workers' messages, restart lost lanes."""
    from core import runner

    return runner.recover(runtime.current())


def retune_campaign(campaign_id: int) -> int:
    """After a live ratio change: messages not yet sent move to the new ratios."""
    from core import prepare

    return prepare.retune(runtime.current(), campaign_id)


def send_transactional(workspace_id: int) -> None:
    """Sends a workspace's due transactional messages (see core/transactional.py)."""
    from core import transactional

    transactional.run(runtime.current(), workspace_id)


def recover_transactional() -> dict[str, int]:
    """Every few seconds: give back dead workers' transactional claims, kick due and scheduled messages."""
    from core import transactional

    return transactional.recover(runtime.current())


def sync_plugin(connection_id: int, full: bool = False) -> dict[str, object]:
    """Syncs one CRM plugin connection (contacts, then segments); see core/plugins/sync.py."""
    from core.plugins import sync

    return sync.run(runtime.current(), connection_id, full).as_dict()


def sync_plugins() -> int:
    """Every 15 minutes: queues an incremental sync of every active plugin connection."""
    from sqlalchemy import select

    from core.models import PluginConnection
    from core.plugins import sync

    rt = runtime.current()
    with rt.sessions() as session:
        ids = session.scalars(select(PluginConnection.id).where(PluginConnection.status == "active")).all()
    for connection_id in ids:
        sync.enqueue(rt.redis, connection_id)
    return len(ids)


def write_back_plugin(connection_id: int) -> dict[str, object]:
    """Writes one connection's due outbox rows to its CRM; see core/plugins/outbox.py."""
    from core.plugins import outbox

    return outbox.flush(runtime.current(), connection_id).__dict__


def flush_plugin_outboxes() -> int:
    """Every 30 s: queues a write-back job per connection with rows due (one job per connection at a time)."""
    from core import queues
    from core.plugins import outbox

    rt = runtime.current()
    with rt.sessions() as session:
        ids = outbox.due_connections(session)
    for connection_id in ids:
        queues.queue(rt.redis).enqueue("core.jobs.write_back_plugin", connection_id,
                                       job_id=f"plugin-outbox-{connection_id}", result_ttl=60)
    return len(ids)


def run_plugin_action(connection_id: int, action: dict[str, object]) -> object:
    """Runs one CRM trigger action (send a template, start a campaign, opt out); see core/plugins/triggers.py."""
    from core.plugins import triggers

    return triggers.execute(runtime.current(), connection_id, triggers.decode(action))
