"""RQ queue names, the JSON serializer, retry policies and job ids."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

DEFAULT = "default"
IMPORTS = "imports"
SENDS = "sends"
ALL = (SENDS, IMPORTS, DEFAULT)  # a worker takes from the first non-empty queue in this order

IMPORT_TIMEOUT_S = 6 * 3600  # a 2 GB file at ~50k rows/s takes under an hour; leave room
IMPORT_RETRY = Retry(max=3, interval=[10, 60, 300])  # seconds


def queue(connection: redis.Redis, name: str = DEFAULT) -> Queue:
    # JSON, never pickle: job arguments are ids and plain values (rq docs: pickle is unsafe).
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_import(connection: redis.Redis, import_id: int) -> Any:
    """Queues an import job; its id is stable so the same import is never queued twice at once."""
    return queue(connection, IMPORTS).enqueue(
        "core.jobs.run_import",
        import_id,
        job_id=f"import-{import_id}",
        job_timeout=IMPORT_TIMEOUT_S,
        retry=IMPORT_RETRY,
        result_ttl=86400,
        failure_ttl=7 * 86400,
    )
