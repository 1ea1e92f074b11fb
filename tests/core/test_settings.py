"""Settings from the environment and the embedded Redis shared by every local process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core import redisdb
from core.settings import Settings


def test_defaults_use_sqlite_and_embedded_redis_in_the_data_dir(tmp_path):
    settings = Settings.from_env({"SMSCONNECT_DATA_DIR": str(tmp_path)})
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'smsconnect.db'}"
    assert settings.redis_url is None
    assert (tmp_path / "encryption_key").stat().st_mode & 0o777 == 0o600
    again = Settings.from_env({"SMSCONNECT_DATA_DIR": str(tmp_path)})
    assert again.secret_key == settings.secret_key and again.encryption_key == settings.encryption_key


def test_postgres_urls_get_the_psycopg_driver(tmp_path):
    env = {"SMSCONNECT_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgres://u@h/db", "SECRET_KEY": "s"}
    assert Settings.from_env(env).sqlalchemy_url == "postgresql+psycopg://u@h/db"


def test_bad_number_in_environment_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        Settings.from_env({"SMSCONNECT_DATA_DIR": str(tmp_path), "WEB_CONCURRENCY": "many"})


def test_a_negative_throttle_transit_allowance_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="SMSCONNECT_THROTTLE_TRANSIT_MS must be at least 0"):
        Settings.from_env({"SMSCONNECT_DATA_DIR": str(tmp_path), "SMSCONNECT_THROTTLE_TRANSIT_MS": "-5"})


def test_embedded_redis_is_started_once_and_shared_across_processes(tmp_path):
    settings = Settings.from_env({"SMSCONNECT_DATA_DIR": str(tmp_path)})
    try:
        redisdb.connect(settings).set("shared", "yes")
        code = (
            "from core.settings import Settings; from core import redisdb; import sys;"
            f"s = Settings.from_env({{'SMSCONNECT_DATA_DIR': {str(tmp_path)!r}}});"
            "sys.stdout.write(redisdb.connect(s).get('shared').decode())"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout == "yes"
        assert len(list(tmp_path.glob("redis.pid"))) == 1
    finally:
        assert redisdb.stop_embedded(tmp_path)
