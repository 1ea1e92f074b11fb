"""The process-wide handles (settings, database, Redis) that the app and RQ jobs share."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import db, redisdb
from core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis


_current: Runtime | None = None


def configure(settings: Settings) -> Runtime:
    """Opens the database engine and Redis client for these settings and makes them current."""
    global _current
    engine = db.make_engine(settings.sqlalchemy_url)
    _current = Runtime(settings, engine, db.make_sessionmaker(engine), redisdb.connect(settings))
    return _current


def current() -> Runtime:
    """The configured runtime; a worker configures it from the environment on first use."""
    if _current is None:
        return configure(Settings.from_env())
    return _current


def reset() -> None:
    global _current
    if _current is not None:
        _current.engine.dispose()
    _current = None


def freeze_heap() -> None:
    """Moves every object alive now into the garbage collector's permanent generation, which it never scans again.

    Long-running processes call it once they have started (each web worker, `smsconnect worker` before it forks
    jobs): the modules, the app, SQLAlchemy's mappers and statement caches are a few hundred thousand objects, and
    each full collection walked all of them: 94 to 137 ms a time in a lane, which may hold SQLite's write lock,
    and 96 ms in a web worker storing delivery reports (the unthrottled ceiling, 2 pairs of runs: 18,100 and
    18,500/s before, 21,300 and 21,500/s after). A worker's forked jobs share these objects' memory pages with it,
    since the collector no longer writes to them.
    """
    gc.collect()
    gc.freeze()
