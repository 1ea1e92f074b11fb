from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from connector.cli.simulator import command_line
from core import simulator
from core.providers import ProviderAuthFailed
from tests.providers import build, outbound
from webhooks import signing

SECRET = "sim-secret-0123456789"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[simulator.SimulatorHandle]:
    handle = simulator.start_in_thread(delay=0.02, secret=SECRET, seed=3, data_dir=tmp_path)
    yield handle
    handle.stop()


def _get(handle: simulator.SimulatorHandle, path: str) -> Any:
    return requests.get(handle.url + path, headers={"Authorization": f"Bearer {SECRET}"}, timeout=5).json()


def _wait(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_re_sent_key_returns_its_first_id_and_counts_as_a_duplicate(sim: simulator.SimulatorHandle) -> None:
    provider = build("simulator", {"url": sim.url, "secret": SECRET})
    first = provider.send(outbound(3))
    again = provider.send(outbound(2))
    assert [r.provider_message_id for r in again] == [r.provider_message_id for r in first[:2]]
    assert {k: sim.stats()[k] for k in ("received", "unique", "duplicates")} == {
        "received": 5, "unique": 3, "duplicates": 2}
    assert [r["status"] for r in _get(sim, "/log?after=2")["records"]] == ["accepted", "duplicate", "duplicate"]


def test_bad_numbers_are_rejected_per_message(sim: simulator.SimulatorHandle) -> None:
    provider = build("simulator", {"url": sim.url, "secret": SECRET})
    good, bad = provider.send(outbound(1) + outbound(1, to="600100200", start=2))
    assert good.accepted
    assert not bad.accepted and bad.error_code == "invalid_number" and "E.164" in (bad.error or "")
    assert sim.stats()["rejected"] == 1


def test_a_wrong_secret_is_an_auth_failure(sim: simulator.SimulatorHandle) -> None:
    with pytest.raises(ProviderAuthFailed):
        build("simulator", {"url": sim.url, "secret": "wrong"}).send(outbound(1))


def test_reports_come_back_signed_in_batches_with_the_configured_mix(sim: simulator.SimulatorHandle,
                                                                     httpserver: HTTPServer) -> None:
    httpserver.expect_request("/dlr", method="POST").respond_with_json({"ok": True})
    requests.post(sim.url + "/config", json={"mix": {"expired": 1}}, headers={"Authorization": f"Bearer {SECRET}"},
                  timeout=5).raise_for_status()
    provider = build("simulator", {"url": sim.url, "secret": SECRET})
    provider.callback_url = httpserver.url_for("/dlr")  # type: ignore[attr-defined]
    results = provider.send(outbound(20))
    _wait(lambda: sim.stats()["reports_sent"] == 20)
    reports = []
    for request, _ in httpserver.log:
        signing.verify(SECRET, request.get_data(), request.headers["X-Simulator-Signature"])
        reports += request.get_json()["reports"]
    assert len(httpserver.log) <= 2  # batched, not one POST per message
    assert {r["status"] for r in reports} == {"EXPIRED"} and {r["code"] for r in reports} == {408}
    assert sorted(r["id"] for r in reports) == sorted(r.provider_message_id for r in results)
    assert all(r["key"].startswith("m-") and r["at"].endswith("Z") for r in reports)


def test_failed_callbacks_are_retried(sim: simulator.SimulatorHandle, httpserver: HTTPServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "RETRY_AFTER_S", (0.01, 0.01))
    httpserver.expect_ordered_request("/dlr").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/dlr").respond_with_json({})
    provider = build("simulator", {"url": sim.url, "secret": SECRET})
    provider.callback_url = httpserver.url_for("/dlr")  # type: ignore[attr-defined]
    provider.send(outbound(2))
    _wait(lambda: sim.stats()["reports_sent"] == 2)
    assert len(httpserver.log) == 2


class SlowWebhook:
    """A threaded webhook that takes `seconds` per report POST and counts what it sees."""

    def __init__(self, seconds: float) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.lock, self.now, self.most, self.started, self.reports = threading.Lock(), 0, 0, 0, 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    hook.now += 1
                    hook.started += 1
                    hook.most = max(hook.most, hook.now)
                time.sleep(seconds)
                with hook.lock:
                    hook.now -= 1
                    hook.reports += len(json.loads(body)["reports"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/dlr"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.parametrize("workers", [1, 3])
def test_report_batches_are_posted_by_as_many_callback_workers_as_set(workers: int) -> None:
    """A carrier posts callbacks side by side; with one worker the batches go one after another."""
    hook = SlowWebhook(0.3)
    handle = simulator.start_in_thread(delay=0.02, secret=SECRET, seed=3, callback_workers=workers)
    try:
        provider = build("simulator", {"url": handle.url, "secret": SECRET})
        provider.callback_url = hook.url  # type: ignore[attr-defined]
        provider.send(outbound(1500))  # one request: every report falls due at once, three batches of 500
        _wait(lambda: handle.stats()["reports_sent"] == 1500, timeout=10)
    finally:
        handle.stop()
        hook.server.shutdown()
    assert hook.reports == 1500 and hook.most == workers


def test_stop_waits_for_the_report_posts_under_way() -> None:
    """Nothing reaches the webhook after stop() returns (a test's clean-up may be emptying the database)."""
    hook = SlowWebhook(0.5)
    handle = simulator.start_in_thread(delay=0.01, secret=SECRET, seed=3)
    try:
        provider = build("simulator", {"url": handle.url, "secret": SECRET})
        provider.callback_url = hook.url  # type: ignore[attr-defined]
        provider.send(outbound(3))
        _wait(lambda: hook.started == 1)
    finally:
        handle.stop()
    assert hook.reports == 3 and hook.now == 0
    hook.server.shutdown()


def test_the_same_seed_draws_the_same_statuses(tmp_path: Path) -> None:
    drawn = []
    for _ in range(2):
        handle = simulator.start_in_thread(delay=60, seed=42, mix={"delivered": 1, "error": 1})
        try:
            handle.simulator.send({"messages": [{"key": f"k{i}", "to": "+48600100200", "text": "x"}
                                                for i in range(30)], "callback_url": "http://127.0.0.1:9/x"})
            drawn.append([report["status"] for item in sorted(handle.simulator.pending) for report in item[4]])
        finally:
            handle.stop()
    assert drawn[0] == drawn[1] and {"DELIVERED", "ERROR"} == set(drawn[0])


def test_the_received_log_survives_a_restart_and_reset_clears_it(tmp_path: Path) -> None:
    handle = simulator.start_in_thread(data_dir=tmp_path, delay=60)
    ids = [r.provider_message_id for r in build("simulator", {"url": handle.url}).send(outbound(2))]
    handle.stop()
    lines = [json.loads(line) for line in (tmp_path / "received.jsonl").read_text().splitlines()]
    assert [(r["key"], r["to"], r["status"]) for r in lines] == [("m-1", "+48600100200", "accepted"),
                                                                  ("m-2", "+48600100200", "accepted")]
    assert all(r["at"] > 1e9 and r["mono"] > 0 for r in lines)
    handle = simulator.start_in_thread(data_dir=tmp_path, delay=60)
    try:
        again = build("simulator", {"url": handle.url}).send(outbound(1))
        assert again[0].provider_message_id == ids[0]
        assert handle.stats()["duplicates"] == 1 and handle.stats()["unique"] == 2
        assert requests.post(handle.url + "/reset", timeout=5).json() == {"status": "reset"}
        assert handle.stats()["received"] == 0 and (tmp_path / "received.jsonl").read_text() == ""
        assert len(list(tmp_path.glob("received-*.jsonl"))) == 1
    finally:
        handle.stop()


def test_delivered_messages_click_links_at_the_click_base_and_reply(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/r/abc", method="GET").respond_with_data("", status=302,
                                                                         headers={"Location": "https://shop.test/"})
    httpserver.expect_request("/inbound", method="POST").respond_with_json({})
    handle = simulator.start_in_thread(delay=0, mix={"delivered": 1}, click_rate=1.0, secret=SECRET,
                                       click_base=httpserver.url_for("/").rstrip("/"), reply_rate=1.0,
                                       inbound_url=httpserver.url_for("/inbound"))
    try:
        handle.simulator.send({"messages": [{"key": "k", "to": "+48600100200", "from": "ACME",
                                             "text": "Sale! https://go.shop.test/r/abc?utm=sms"}]})
        _wait(lambda: handle.stats()["clicks"] == 1 and handle.stats()["replies"] == 1)
    finally:
        handle.stop()
    click = next(req for req, _ in httpserver.log if req.method == "GET")
    assert click.headers["Host"] == "go.shop.test" and click.query_string == b"utm=sms"
    assert len([req for req, _ in httpserver.log if req.method == "GET"]) == 1  # the redirect is not followed
    reply = next(req for req, _ in httpserver.log if req.method == "POST")
    signing.verify(SECRET, reply.get_data(), reply.headers["X-Simulator-Signature"])
    assert {k: reply.get_json()[k] for k in ("type", "from", "to")} == {"type": "mo", "from": "+48600100200",
                                                                       "to": "ACME"}


def test_config_rejects_unknown_statuses_and_settings(sim: simulator.SimulatorHandle) -> None:
    headers = {"Authorization": f"Bearer {SECRET}"}
    assert requests.post(sim.url + "/config", json={"mix": {"lost": 1}}, headers=headers, timeout=5).status_code == 400
    assert requests.post(sim.url + "/config", json={"speed": 1}, headers=headers, timeout=5).status_code == 400
    changed = requests.post(sim.url + "/config", json={"delay": 0.5, "mix": "delivered=3,error=1"},
                            headers=headers, timeout=5).json()
    assert changed["delay"] == 0.5 and changed["mix"] == {"DELIVERED": 0.75, "ERROR": 0.25}
    assert requests.get(sim.url + "/stats", timeout=5).status_code == 401


def test_it_runs_as_a_subprocess(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp_path / "secret").write_text(SECRET + "\n")
    process = subprocess.Popen(command_line(port=port, delay=0.1, secret_file=tmp_path / "secret", data_dir=tmp_path),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        simulator.wait_ready(f"http://127.0.0.1:{port}", timeout=20)
        results = build("simulator", {"url": f"http://127.0.0.1:{port}", "secret": SECRET}).send(outbound(2))
        assert all(r.accepted for r in results)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
