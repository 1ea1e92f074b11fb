"""Running an import from the terminal: queue it, make sure a worker takes it, draw a progress bar."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click
from rq import Worker

from core import db, imports, queues, storage
from core.models import ContactImport
from core.runtime import Runtime


def start_import(rt: Runtime, workspace_id: int, path: Path, mapping: dict[str, str] | None) -> int:
    """Copies the file to storage, records the import and queues it; returns the import id."""
    imports.file_format(path.name)
    with open(path, "rb") as handle:
        stored, size = storage.save_upload(rt.settings.uploads_dir, workspace_id, handle, path.name,
                                           rt.settings.max_upload_bytes)
    with db.transaction(rt.sessions) as session:
        record = imports.create_import(session, workspace_id, stored, path.name, size, mapping)
    queues.enqueue_import(rt.redis, record.id)
    return record.id


def ensure_worker(rt: Runtime) -> subprocess.Popen[bytes] | None:
    """Starts a burst worker when none is listening (e.g. no `smsconnect up` running)."""
    if any(queues.IMPORTS in w.queue_names() for w in Worker.all(connection=rt.redis)):
        return None
    return subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def follow_import(rt: Runtime, import_id: int, label: str = "importing") -> ContactImport:
    """Polls the import's progress into a bar until it ends; returns the final record."""
    helper = ensure_worker(rt)
    done = 0
    with click.progressbar(length=1000, label=label, file=sys.stderr, show_percent=True) as bar:
        while True:
            with rt.sessions() as session:
                record = session.get(ContactImport, import_id)
            assert record is not None
            now = int(imports.progress(record) * 1000)
            bar.update(now - done)
            done = now
            if record.status in ("finished", "failed"):
                break
            if helper is not None and helper.poll() is not None:
                raise click.ClickException(
                    f"the import did not finish (status {record.status}); run `smsconnect worker` to see why"
                )
            time.sleep(0.2)
    if helper is not None:
        helper.wait(30)
    return record
