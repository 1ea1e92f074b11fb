from __future__ import annotations

import base64

import pytest
from pytest_httpserver import HTTPServer

from core.errors import InvalidInput
from core.providers import ProviderAuthFailed, ProviderUnavailable
from tests.fakes import twilio
from tests.providers import CALLBACK, build, outbound


def test_posts_the_form_with_basic_auth_and_status_callback(httpserver: HTTPServer) -> None:
    httpserver.expect_request(twilio.messages_path(), method="POST").respond_with_handler(twilio.created)
    [result] = build("twilio", twilio.settings(httpserver)).send(outbound(1, sender=None))
    assert result.accepted and result.provider_message_id and result.provider_message_id.startswith("SM")
    request = httpserver.log[0][0]
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form.to_dict() == {"To": "+48600100200", "From": twilio.FROM, "Body": "Hi!",
                                      "StatusCallback": CALLBACK}
    expected = base64.b64encode(f"{twilio.ACCOUNT_SID}:{twilio.AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_a_messaging_service_sends_when_no_from_is_set(httpserver: HTTPServer) -> None:
    httpserver.expect_request(twilio.messages_path()).respond_with_handler(twilio.created)
    service = "MG" + "ab" * 16
    settings = twilio.settings(httpserver, messaging_service_sid=service)
    del settings["from"]
    build("twilio", settings).send(outbound(1, sender=None))
    assert httpserver.log[0][0].form["MessagingServiceSid"] == service
    assert "From" not in httpserver.log[0][0].form


def test_an_invalid_number_is_a_permanent_result_with_the_code(httpserver: HTTPServer) -> None:
    httpserver.expect_request(twilio.messages_path()).respond_with_response(
        twilio.error(21211, "The 'To' number +48000 is not a valid phone number.", 400))
    [result] = build("twilio", twilio.settings(httpserver)).send(outbound(1, to="+48000"))
    assert not result.accepted and result.error_code == "21211"
    assert result.error == "Twilio: The 'To' number +48000 is not a valid phone number."


def test_401_is_auth_failed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(twilio.messages_path()).respond_with_response(twilio.error(20003, "Authenticate", 401))
    with pytest.raises(ProviderAuthFailed, match="Authenticate"):
        build("twilio", twilio.settings(httpserver)).send(outbound(1))


def test_a_sender_the_account_does_not_own_stops_the_account(httpserver: HTTPServer) -> None:
    httpserver.expect_request(twilio.messages_path()).respond_with_response(
        twilio.error(21606, "The 'From' phone number provided is not a valid message-capable Twilio number.", 400))
    with pytest.raises(ProviderAuthFailed, match="21606"):
        build("twilio", twilio.settings(httpserver)).send(outbound(2))


def test_429_with_a_long_retry_after_is_unavailable_with_the_hint(httpserver: HTTPServer) -> None:
    response = twilio.error(20429, "Too Many Requests", 429)
    response.headers["Retry-After"] = "90"
    httpserver.expect_request(twilio.messages_path()).respond_with_response(response)
    with pytest.raises(ProviderUnavailable) as caught:
        build("twilio", twilio.settings(httpserver)).send(outbound(1))
    assert caught.value.retry_after == 90.0


def test_settings_need_a_sender_and_a_real_account_sid() -> None:
    with pytest.raises(InvalidInput, match="settings.from"):
        build("twilio", {"account_sid": twilio.ACCOUNT_SID, "auth_token": "t"})
    with pytest.raises(InvalidInput, match="settings.account_sid"):
        build("twilio", {"account_sid": "nope", "auth_token": "t", "from": "+1500"})
