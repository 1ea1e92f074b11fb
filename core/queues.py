"""RQ queue names, the JSON serializer, retry policies and job ids."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

DEFAULT = "default"
IMPORTS = "imports"
SENDS = "sends"
TRANSACTIONAL = "transactional"  # one-time codes and order updates: first, so they never wait behind campaigns
ALL = (TRANSACTIONAL, SENDS, IMPORTS, DEFAULT)  # a worker takes from the first non-empty queue in this order

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


CAMPAIGN_TIMEOUT_S = 3600  # processing 10M recipients stays well under this
LANE_TIMEOUT_S = 300  # a lane job hands over after ~20 s; this only catches a hang


def _active(connection: redis.Redis, job_id: str) -> bool:
    """Whether the job is queued, running, or waiting for its retry."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        status = Job.fetch(job_id, connection=connection, serializer=JSONSerializer).get_status()
    except NoSuchJobError:
        return False
    return status is not None and status.value in ("queued", "started", "deferred", "scheduled")


def processing_active(connection: redis.Redis, campaign_id: int, parts: int) -> bool:
    """Whether the Processing job of a campaign or any of its parts is queued or running."""
    return _active(connection, f"process-{campaign_id}") or any(
        _active(connection, f"prepare-{campaign_id}-{part}") for part in range(1, parts))


def enqueue_processing(connection: redis.Redis, campaign_id: int, only_if_idle: bool = False,
                       parts: int = 1) -> bool:
    """Queues the Processing job of a campaign (one at a time: the job id is the campaign's)."""
    if only_if_idle and processing_active(connection, campaign_id, parts):
        return False
    queue(connection, SENDS).enqueue("core.jobs.process_campaign", campaign_id, job_id=f"process-{campaign_id}",
                                     job_timeout=CAMPAIGN_TIMEOUT_S, retry=Retry(max=3, interval=[5, 30, 120]))
    return True


def enqueue_prepare_part(connection: redis.Redis, campaign_id: int, part: int) -> bool:
    """Queues part `part` (1..) of a campaign's Processing job, unless it is already queued or running."""
    job_id = f"prepare-{campaign_id}-{part}"
    if _active(connection, job_id):
        return False
    queue(connection, SENDS).enqueue("core.jobs.prepare_part", campaign_id, part, job_id=job_id,
                                     job_timeout=CAMPAIGN_TIMEOUT_S, retry=Retry(max=3, interval=[5, 30, 120]))
    return True


def enqueue_lane(connection: redis.Redis, campaign_id: int, lane: int, delay_s: float = 0) -> Any:
    """Queues one dispatch lane job; `delay_s` > 0 runs it later (the worker's scheduler moves it)."""
    from datetime import timedelta

    q = queue(connection, SENDS)
    kwargs = {"job_timeout": LANE_TIMEOUT_S, "result_ttl": 60, "failure_ttl": 7 * 86400}
    if delay_s > 0:
        return q.enqueue_in(timedelta(seconds=delay_s), "core.jobs.dispatch_lane", campaign_id, lane, **kwargs)
    return q.enqueue("core.jobs.dispatch_lane", campaign_id, lane, **kwargs)


TRANSACTIONAL_TIMEOUT_S = 120  # a transactional job hands over after ~10 s; this only catches a hang


def enqueue_transactional(connection: redis.Redis, workspace_id: int, delay_s: float = 0) -> Any:
    """Queues a transactional dispatch job for a workspace; `delay_s` > 0 runs it later (scheduled messages)."""
    from datetime import timedelta

    q = queue(connection, TRANSACTIONAL)
    kwargs = {"job_timeout": TRANSACTIONAL_TIMEOUT_S, "result_ttl": 60, "failure_ttl": 7 * 86400}
    if delay_s > 0:
        return q.enqueue_in(timedelta(seconds=delay_s), "core.jobs.send_transactional", workspace_id, **kwargs)
    return q.enqueue("core.jobs.send_transactional", workspace_id, **kwargs)
