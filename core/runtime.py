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

    Long-running processes call it once they have started (the web app, workers, the simulator): the modules, the
    app, SQLAlchemy's mappers and statement caches are a few hundred thousand objects, and each full collection
    walked all of them: 95 to 140 ms a time, in a lane holding SQLite's write lock or in a web worker storing
    delivery reports (the unthrottled ceiling: 18,100 to 18,500/s before, 21,300 to 21,500/s after). A worker's
    forked jobs share these objects' memory pages with it, since the collector no longer writes to them.
    """
    gc.collect()
    gc.freeze()
