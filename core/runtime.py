"""The process-wide handles (settings, database, Redis) that the app and RQ jobs share."""

from __future__ import annotations

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
