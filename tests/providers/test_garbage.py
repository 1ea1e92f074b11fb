"""A gateway that answers garbage never crashes a worker: every outcome is a result or a ProviderError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from core.providers import ProviderError
from tests.fakes import cm, sinch, twilio
from tests.providers import build, outbound

GARBAGE: list[Any] = [None, 0, "x", [], [None], {}, {"id": {}}, {"sid": [1]}, {"code": {"a": 1}},
                      {"errorCode": "abc", "messages": 5}, {"messages": [{"reference": "m-1", "status": 7}]},
                      {"results": {"a": 1}}, {"results": [None, {"key": "m-1", "error": "x"}]}]


def _settings(server: HTTPServer) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "sinch": (sinch.batches_path(), sinch.settings(server)),
        "cm": (cm.PATH, cm.settings(server)),
        "twilio": (twilio.messages_path(), twilio.settings(server)),
        "generic": ("/sms", {"url": server.url_for("/sms"), "id_path": "a.b",
                             "body_template": '{"to": "{{to}}", "text": "{{text}}"}'}),
        "simulator": ("/send", {"url": server.url_for("")}),
    }


@pytest.mark.parametrize("provider", ["sinch", "cm", "twilio", "generic", "simulator"])
@pytest.mark.parametrize("status", [200, 201, 400, 404])
def test_garbage_answers_become_results(httpserver: HTTPServer, provider: str, status: int) -> None:
    path, settings = _settings(httpserver)[provider]
    for garbage in GARBAGE:
        httpserver.clear()
        httpserver.expect_request(path).respond_with_data(json.dumps(garbage), status=status,
                                                          content_type="application/json")
        try:
            results = build(provider, settings).send(outbound(2))
        except ProviderError:
            continue
        assert [r.key for r in results] == ["m-1", "m-2"], (provider, garbage)
