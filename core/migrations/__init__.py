"""Alembic migrations; `core.migrations.upgrade(url)` is what `smsconnect migrate` runs."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Brings the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)
