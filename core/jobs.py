"""Every RQ job: ids in, one core call. Workers configure the runtime from the environment."""

from __future__ import annotations

from core import contacts, imports, runtime


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
