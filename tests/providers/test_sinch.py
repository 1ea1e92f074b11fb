from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from core.errors import InvalidInput
from core.providers import ProviderAuthFailed, ProviderUnavailable
from tests.fakes import sinch
from tests.providers import CALLBACK, build, outbound


def test_sends_one_batch_per_message_in_the_documented_shape(httpserver: HTTPServer) -> None:
    httpserver.expect_request(sinch.batches_path(), method="POST",
                              headers={"Authorization": f"Bearer {sinch.TOKEN}"}).respond_with_handler(sinch.created)
    results = build("sinch", sinch.settings(httpserver)).send(outbound(2))
    assert [r.accepted for r in results] == [True, True]
    assert all(r.provider_message_id and r.provider_message_id.startswith("01FC6662") for r in results)
    assert [r.key for r in results] == ["m-1", "m-2"]
    sent = httpserver.log[0][0].get_json()
    assert sent == {"to": ["48600100200"], "body": "Hi!", "from": "ACME", "delivery_report": "per_recipient",
                    "callback_url": CALLBACK, "client_reference": "m-1"}


def test_a_number_sender_loses_its_plus_and_the_default_sender_fills_in(httpserver: HTTPServer) -> None:
    httpserver.expect_request(sinch.batches_path()).respond_with_handler(sinch.created)
    provider = build("sinch", sinch.settings(httpserver, default_sender="Shop"))
    provider.send(outbound(1, sender="+4712345678") + outbound(1, sender=None, start=2))
    assert [req.get_json()["from"] for req, _ in httpserver.log] == ["4712345678", "Shop"]


def test_a_400_is_that_message_s_error_and_the_rest_still_go(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(sinch.batches_path()).respond_with_response(
        sinch.error("syntax_invalid_parameter_format", "The 'to' parameter has an invalid format"))
    httpserver.expect_ordered_request(sinch.batches_path()).respond_with_handler(sinch.created)
    first, second = build("sinch", sinch.settings(httpserver)).send(outbound(2))
    assert not first.accepted and first.error_code == "syntax_invalid_parameter_format"
    assert first.error == "Sinch: The 'to' parameter has an invalid format"
    assert second.accepted


def test_401_raises_auth_failed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(sinch.batches_path()).respond_with_response(
        sinch.error("unauthorized", "Invalid API token", status=401))
    with pytest.raises(ProviderAuthFailed, match="Invalid API token"):
        build("sinch", sinch.settings(httpserver)).send(outbound(1))


def test_a_5xx_then_success_is_retried_within_the_call(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(sinch.batches_path()).respond_with_data("Service Unavailable", status=503)
    httpserver.expect_ordered_request(sinch.batches_path()).respond_with_handler(sinch.created)
    [result] = build("sinch", sinch.settings(httpserver)).send(outbound(1))
    assert result.accepted and len(httpserver.log) == 2


def test_an_outage_midway_carries_the_results_already_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(sinch.batches_path()).respond_with_handler(sinch.created)
    httpserver.expect_request(sinch.batches_path()).respond_with_data("down", status=502)
    with pytest.raises(ProviderUnavailable) as caught:
        build("sinch", sinch.settings(httpserver)).send(outbound(3))
    assert [(r.key, r.accepted) for r in caught.value.partial] == [("m-1", True)]


def test_an_accepted_batch_with_a_garbage_body_is_not_sent_again(httpserver: HTTPServer) -> None:
    httpserver.expect_request(sinch.batches_path()).respond_with_data("<html>ok</html>", status=201)
    [result] = build("sinch", sinch.settings(httpserver)).send(outbound(1))
    assert result.accepted and result.provider_message_id is None


def test_the_region_picks_the_host_and_unknown_regions_are_refused() -> None:
    provider = build("sinch", {"service_plan_id": "p1", "api_token": "t", "region": "us"})
    assert provider.batches_url == "https://us.sms.api.sinch.com/xms/v1/p1/batches"  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="settings.region"):
        build("sinch", {"service_plan_id": "p1", "api_token": "t", "region": "mars"})
