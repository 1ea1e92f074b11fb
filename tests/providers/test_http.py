from __future__ import annotations

import random
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from core.providers import ProviderAuthFailed, ProviderUnavailable, RetryPolicy, http
from tests.providers import FAST


def _post(server: HTTPServer, sleeps: list[float], policy: RetryPolicy = FAST) -> requests.Response:
    return http.post(requests.Session(), server.url_for("/send"), provider="test", policy=policy,
                     sleep=sleeps.append, json={"a": 1})


def test_5xx_is_retried_then_the_success_is_returned(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/send", method="POST").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/send", method="POST").respond_with_data("oops", status=500)
    httpserver.expect_ordered_request("/send", method="POST").respond_with_json({"id": "x"}, status=201)
    sleeps: list[float] = []
    response = _post(httpserver, sleeps)
    assert response.status_code == 201
    assert len(sleeps) == 2
    httpserver.check_assertions()


def test_429_honours_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/send").respond_with_data("slow down", status=429, headers={"Retry-After": "2"})
    httpserver.expect_ordered_request("/send").respond_with_json({}, status=200)
    sleeps: list[float] = []
    assert _post(httpserver, sleeps).status_code == 200
    assert sleeps == [2.0]


def test_a_long_retry_after_ends_the_call_at_once_with_the_hint(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_data("", status=429, headers={"Retry-After": "120"})
    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable) as caught:
        _post(httpserver, sleeps)
    assert caught.value.retry_after == 120.0
    assert sleeps == [] and len(httpserver.log) == 1


def test_5xx_every_time_ends_as_unavailable_after_the_attempts(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_json({"text": "maintenance"}, status=503)
    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match="503.*maintenance"):
        _post(httpserver, sleeps)
    assert len(httpserver.log) == 3 and len(sleeps) == 2


def test_401_and_403_are_auth_failures_without_retry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_json({"code": "unauthorized", "text": "bad token"}, status=401)
    with pytest.raises(ProviderAuthFailed, match="bad token"):
        _post(httpserver, [])
    assert len(httpserver.log) == 1


def test_other_4xx_is_returned_for_the_provider_to_read(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/send").respond_with_json({"code": "syntax_invalid_parameter_format"}, status=400)
    assert _post(httpserver, []).status_code == 400
    assert len(httpserver.log) == 1


def test_connection_refused_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    with pytest.raises(ProviderUnavailable, match="ConnectionError"):
        http.post(requests.Session(), f"http://127.0.0.1:{port}/x?api_key=SECRET", provider="test", policy=FAST,
                  sleep=sleeps.append)
    assert len(sleeps) == 2


def test_read_timeout_is_retried_and_the_url_query_never_reaches_the_message(httpserver: HTTPServer) -> None:
    def slow(_request):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return Response("late")

    httpserver.expect_request("/send").respond_with_handler(slow)
    policy = RetryPolicy(attempts=2, base_delay=0.001, read_timeout=0.1)
    with pytest.raises(ProviderUnavailable) as caught:
        http.post(requests.Session(), httpserver.url_for("/send") + "?key=SECRET", provider="test", policy=policy)
    assert "Timeout" in str(caught.value) and "SECRET" not in str(caught.value)
    deadline = time.monotonic() + 2  # let the fake finish both abandoned requests, or the next test sees them
    while len(httpserver.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(7)
    waits = [http.backoff(policy, attempt, rng) for attempt in range(6)]
    for attempt, wait in enumerate(waits):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= wait <= ceiling
    assert len({round(w, 6) for w in waits}) == len(waits)  # jittered, not a fixed ladder


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert http.retry_after("3") == 3.0
    assert http.retry_after(None) is None and http.retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (http.retry_after(later) or 0) <= 31
