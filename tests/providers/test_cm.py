from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from core.providers import ProviderAuthFailed, ProviderUnavailable
from tests.fakes import cm
from tests.providers import build, outbound


def test_one_request_carries_the_batch_with_references(httpserver: HTTPServer) -> None:
    httpserver.expect_request(cm.PATH, method="POST").respond_with_handler(cm.gateway())
    results = build("cm", cm.settings(httpserver)).send(outbound(3))
    assert [(r.key, r.accepted, r.provider_message_id) for r in results] == [
        ("m-1", True, None), ("m-2", True, None), ("m-3", True, None)]
    assert len(httpserver.log) == 1
    body = httpserver.log[0][0].get_json()
    assert body["messages"]["authentication"] == {"producttoken": cm.PRODUCT_TOKEN}
    assert body["messages"]["msg"][0] == {
        "from": "ACME", "to": [{"number": "+48600100200"}], "body": {"type": "auto", "content": "Hi!"},
        "reference": "m-1", "minimumNumberOfMessageParts": 1, "maximumNumberOfMessageParts": 8}


def test_per_message_rejections_are_results(httpserver: HTTPServer) -> None:
    httpserver.expect_request(cm.PATH).respond_with_handler(cm.gateway(frozenset({"+48000"})))
    good, bad = build("cm", cm.settings(httpserver)).send(outbound(1) + outbound(1, to="+48000", start=2))
    assert good.accepted
    assert not bad.accepted and bad.error_code == "303" and "is not a number" in (bad.error or "")


def test_error_code_101_is_an_auth_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request(cm.PATH).respond_with_json(cm.auth_failed(), status=400)
    with pytest.raises(ProviderAuthFailed, match="authentication failed"):
        build("cm", cm.settings(httpserver)).send(outbound(2))


def test_a_5xx_outage_is_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(cm.PATH).respond_with_data("Bad Gateway", status=502)
    with pytest.raises(ProviderUnavailable):
        build("cm", cm.settings(httpserver)).send(outbound(1))
    assert len(httpserver.log) == 3


def test_a_garbage_answer_never_crashes(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(cm.PATH).respond_with_data("OK", status=200)
    httpserver.expect_ordered_request(cm.PATH).respond_with_data("<error/>", status=400)
    provider = build("cm", cm.settings(httpserver))
    assert [r.accepted for r in provider.send(outbound(2))] == [True, True]
    assert [r.accepted for r in provider.send(outbound(1))] == [False]
