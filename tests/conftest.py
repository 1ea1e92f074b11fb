"""Fixtures: a migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL), a real Redis flushed
around each test (embedded, or TEST_REDIS_URL), a fresh app per test, and a burst worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import text

from connector import create_app
from core import db, migrations, queues, redisdb, runtime
from core.models import Base
from core.settings import Settings


def _reset_postgres(url: str) -> None:
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("data")
    settings = Settings(
        data_dir=data_dir,
        database_url=os.environ.get("TEST_DATABASE_URL") or None,
        redis_url=os.environ.get("TEST_REDIS_URL") or None,
        secret_key="test-secret",
        encryption_key="pZf0oPe1M4V0mJ8r9pBq4mQ0P8yQbqzJb9S6b3yqv0Y=",
        base_url="http://sms.test",
        import_batch_rows=50,
        import_parallel_min_rows=10**9,
    )
    if settings.database_url:
        _reset_postgres(settings.sqlalchemy_url)
    migrations.upgrade(settings.sqlalchemy_url)
    yield settings
    runtime.reset()
    if not settings.redis_url:
        redisdb.stop_embedded(data_dir)


def _clean(settings: Settings) -> None:
    engine = runtime.current().engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.config["TESTING"] = True
    rt = runtime.current()
    rt.redis.flushdb()
    yield app
    rt.redis.flushdb()
    _clean(settings)
    rt.engine.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def rt(app) -> runtime.Runtime:  # type: ignore[no-untyped-def]
    return runtime.current()


@pytest.fixture
def redis_conn(rt: runtime.Runtime) -> redis.Redis:
    return rt.redis


def burst(rt: runtime.Runtime) -> None:
    """Runs every queued job in this process (an RQ burst worker), like a real worker would."""
    worker = SimpleWorker([queues.queue(rt.redis, n) for n in queues.ALL], connection=rt.redis,
                          serializer=JSONSerializer)
    worker.work(burst=True, logging_level="WARNING")


@pytest.fixture
def run_jobs(rt: runtime.Runtime):  # type: ignore[no-untyped-def]
    return lambda: burst(rt)


@pytest.fixture
def data_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Writes a test file (str → UTF-8 unless an encoding is given, or raw bytes)."""

    def write(name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return write


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment a `smsconnect` command needs to reach the test database, Redis and secrets."""
    monkeypatch.setenv("SMSCONNECT_DATA_DIR", str(settings.data_dir))
    for name, value in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SMSCONNECT_ENCRYPTION_KEY", settings.encryption_key)
    return monkeypatch
