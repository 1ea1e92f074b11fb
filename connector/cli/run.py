"""Process commands: migrate, serve (gunicorn), worker (RQ), up (all of it on one machine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from rq import Worker
from rq.serializers import JSONSerializer

from connector.cli import settings_from_env
from core import migrations, queues, redisdb, runtime
from core.settings import Settings

CRON_PURGE_S = 3600  # how often soft-deleted contacts past retention are erased
CRON_CLICKS_S = 5  # how often recorded short-link hits move from the Redis stream into the database


def migrate_db(settings: Settings) -> None:
    migrations.upgrade(settings.sqlalchemy_url)


@click.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    settings = settings_from_env()
    migrate_db(settings)
    click.echo(f"database is up to date ({settings.sqlalchemy_url.split('@')[-1]})")


@click.command()
@click.option("--workers", type=int, default=None, help="gunicorn worker processes (default WEB_CONCURRENCY or 2)")
@click.option("--bind", default=None, help="host:port (default HOST:PORT, 127.0.0.1:8000)")
def serve(workers: int | None, bind: str | None) -> None:
    """Run the web app under gunicorn."""
    settings = settings_from_env()
    redisdb.connect(settings)  # start the embedded Redis before gunicorn forks
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--workers", str(workers or settings.web_workers),
                              "--bind", bind or f"{settings.host}:{settings.port}", "--access-logfile", "-",
                              "connector.wsgi:app"])


def make_worker(settings: Settings) -> Worker:
    rt = runtime.configure(settings)
    return Worker([queues.queue(rt.redis, name) for name in queues.ALL], connection=rt.redis,
                  serializer=JSONSerializer)


@click.command()
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
def worker(burst: bool) -> None:
    """Run one RQ worker on every smsconnect queue (any number of them, on any machine)."""
    settings = settings_from_env()
    rq_worker = make_worker(settings)
    runtime.freeze_heap()  # before the jobs are forked: they skip what the worker holds, and share its pages
    rq_worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)


CRON_RECOVER_S = 5  # how often due campaigns start and dead workers' messages are given back
CRON_PLUGIN_SYNC_S = 900  # incremental CRM syncs of every active plugin connection
CRON_PLUGIN_OUTBOX_S = 30  # write-back outbox rows due are sent this often
PERIODIC = {"core.jobs.purge_deleted_contacts": CRON_PURGE_S, "core.jobs.consume_clicks": CRON_CLICKS_S,
            "core.jobs.recover_campaigns": CRON_RECOVER_S, "core.jobs.recover_transactional": CRON_RECOVER_S,
            "core.jobs.sync_plugins": CRON_PLUGIN_SYNC_S, "core.jobs.flush_plugin_outboxes": CRON_PLUGIN_OUTBOX_S}


@click.command()
def cron() -> None:
    """Queue the periodic jobs (started by `up`). Several may run: each period is queued once, via SET NX."""
    rt = runtime.configure(settings_from_env())
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        now = int(time.time())
        for func, every in PERIODIC.items():
            period = now // every
            if rt.redis.set(f"smsconnect:cron:{func}:{period}", 1, nx=True, ex=every * 2):
                queues.queue(rt.redis).enqueue(func, job_id=f"cron-{func.replace('.', '_')}-{period}")
        time.sleep(1)


def _simulator_argv(settings: Settings) -> list[str]:
    """The carrier simulator for local trials; its shared secret is kept in data_dir/simulator/secret."""
    import secrets as random_secrets

    from connector.cli.simulator import DEFAULT_PORT, command_line

    folder = settings.data_dir / "simulator"
    folder.mkdir(parents=True, exist_ok=True)
    secret_file = folder / "secret"
    if not secret_file.exists():
        secret_file.write_text(random_secrets.token_urlsafe(24))
        secret_file.chmod(0o600)
    click.echo(f"carrier simulator on http://127.0.0.1:{DEFAULT_PORT} (shared secret in {secret_file})")
    return command_line(port=DEFAULT_PORT, secret_file=secret_file, data_dir=folder)


@click.command()
@click.option("--workers", type=int, default=None, help="RQ worker processes (default SMSCONNECT_WORKERS or 3)")
@click.option("--simulator/--no-simulator", default=True, help="also run the local carrier simulator")
def up(workers: int | None, simulator: bool) -> None:
    """Everything on one machine: web server, RQ worker(s), the scheduler and the carrier simulator.
    Ctrl-C stops all of it."""
    settings = settings_from_env()
    started_redis = not settings.redis_url and not (settings.data_dir / redisdb.SOCKET_NAME).exists()
    redisdb.connect(settings)
    migrate_db(settings)
    me = [sys.executable, "-m", "connector.cli"]
    argvs = [[*me, "serve"], *([[*me, "worker"]] * (workers or settings.worker_processes)), [*me, "cron"]]
    if simulator:
        argvs.append(_simulator_argv(settings))
    # Own sessions: Ctrl-C reaches only this process, which then stops each child with SIGTERM (graceful).
    children = [subprocess.Popen(argv, start_new_session=True) for argv in argvs]
    click.echo(f"smsconnect is up on {settings.base_url} (API docs: {settings.base_url}/api/docs); Ctrl-C stops it")
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if started_redis:
        redisdb.stop_embedded(settings.data_dir)
    click.echo("smsconnect stopped")


COMMANDS = [migrate, serve, worker, cron, up]
