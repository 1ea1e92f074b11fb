"""The `smsconnect` command as a user runs it: workspaces, keys, imports with a progress bar, demo."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from connector.cli import main
from tests.factories import auth


@pytest.fixture
def cli(app, cli_env):
    """Runs `smsconnect ...` against the test database and Redis through the environment, as a user would."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_workspace_and_key_created_from_the_cli_work_in_the_api(cli, client):
    created = cli("workspaces", "create", "Shop", "--region", "PL")
    assert created.exit_code == 0, created.output
    ws_id = int(created.output.split()[1])
    key = cli("keys", "create", "--workspace", str(ws_id), "--role", "editor")
    assert key.exit_code == 0
    secret = key.stdout.strip().splitlines()[0]
    response = client.get("/api/v1/workspace", headers=auth(secret))
    assert response.status_code == 200 and response.json["name"] == "Shop"


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--workspace", "999999", "--role", "admin"),
        ("workspaces", "create", "X", "--region", "XX"),
        ("keys", "create", "--workspace", "1", "--role", "owner"),
    ],
)
def test_bad_input_exits_2_with_a_message(cli, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert ("error:" in result.output) or ("Invalid value" in result.output)


def test_contacts_import_runs_a_worker_and_reports(cli, tmp_path, client):
    ws_id = int(cli("workspaces", "create", "Shop").output.split()[1])
    secret = cli("keys", "create", "--workspace", str(ws_id), "--role", "viewer").stdout.strip()
    path = tmp_path / "people.csv"
    path.write_text("Mobile,Name\n600100200,Anna\n+48600100201,Piotr\n12,bad\n", encoding="utf-8")
    result = cli("contacts", "import", str(path), "--workspace", str(ws_id), "--map", "phone=Mobile,first_name=Name")
    assert result.exit_code == 0, result.output
    assert "finished: 3 rows, 2 created" in result.output and "1 failed" in result.output
    listed = client.get("/api/v1/contacts", headers=auth(secret)).json
    assert {c["phone"] for c in listed["items"]} == {"+48600100200", "+48600100201"}


@pytest.mark.parametrize("command", ["worker", "cron", "serve", "migrate", "up"])
def test_a_bad_setting_ends_a_process_command_with_its_message_and_exit_code_2(cli, command, monkeypatch):
    monkeypatch.setenv("SMSCONNECT_THROTTLE_TRANSIT_MS", "-5")
    result = cli(command)
    assert result.exit_code == 2 and "SMSCONNECT_THROTTLE_TRANSIT_MS must be at least 0" in result.output


def test_contacts_import_with_a_bad_map_exits_2(cli, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Mobile\n600100200\n")
    result = cli("contacts", "import", str(path), "--workspace", "1", "--map", "first_name")
    assert result.exit_code == 2 and "field=Column" in result.output


def test_demo_runs_a_campaign_and_ends_with_one_json_line_of_the_figures(cli):
    result = cli("demo", "--contacts", "120", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"recipients", "sent", "delivered", "failed", "clicked", "ctr", "cost"} <= set(figures)
    # 120 generated rows: one invalid number (every 97th), about 20% opted out of marketing.
    assert figures["recipients"] + figures["excluded"] == 119
    assert 70 <= figures["recipients"] <= 110
    assert figures["sent"] == figures["recipients"]  # the simulator accepts every valid number
    assert figures["delivered"] + figures["failed"] == figures["sent"]
    assert figures["sent"] * 0.07 <= figures["cost"] <= figures["sent"] * 0.14 + 1e-9  # 1-2 parts at 0.07 PLN
    assert "campaign 'Spring sale': finished" in result.output


def test_up_serves_and_ctrl_c_stops_every_process(tmp_path, settings):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SMSCONNECT_DATA_DIR": str(tmp_path), "PORT": str(port), "WEB_CONCURRENCY": "1"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    up = subprocess.Popen([sys.executable, "-m", "connector.cli", "up", "--no-simulator"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json() == {"status": "ok"}:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise AssertionError("the web server did not answer")
        children = subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 5  # web server, three workers (the default: dispatch lanes + 1), the scheduler
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0 and "smsconnect stopped" in output
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    assert not (tmp_path / "redis.pid").exists() or not os.path.exists(
        f"/proc/{(tmp_path / 'redis.pid').read_text().strip()}")
