from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from core.errors import InvalidInput
from core.providers import generic
from tests.providers import CALLBACK, build, outbound

TEMPLATE = json.dumps({"recipient": "{{to}}", "sender": "{{from}}", "message": "{{text}}", "ref": "{{key}}",
                       "segments": "{{parts}}", "note": "ref {{key}} to {{ to }}", "hook": "{{callback_url}}"})


def _settings(server: HTTPServer, **extra: object) -> dict[str, object]:
    return {"url": server.url_for("/sms"), "auth_header": "X-Api-Key", "auth_value": "k-123456789012",
            "body_template": TEMPLATE, "id_path": "data.messages.0.id", **extra}


def test_the_template_is_filled_as_json_values_so_text_cannot_break_out(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/sms", headers={"X-Api-Key": "k-123456789012"}).respond_with_json(
        {"data": {"messages": [{"id": 4711}]}}, status=202)
    text = 'He said "hi"}, {"evil": 1} \\ {{to}}\nbye'
    [result] = build("generic", _settings(httpserver)).send(outbound(1, sender=None, text=text))
    assert result.accepted and result.provider_message_id == "4711"
    assert httpserver.log[0][0].get_json() == {
        "recipient": "+48600100200", "sender": None, "message": text, "ref": "m-1", "segments": 1,
        "note": "ref m-1 to +48600100200", "hook": CALLBACK}


def test_a_missing_id_is_still_accepted_and_a_refusal_is_a_result(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/sms").respond_with_json({"ok": True}, status=200)
    httpserver.expect_ordered_request("/sms").respond_with_json({"error": "number blocked"}, status=422)
    first, second = build("generic", _settings(httpserver)).send(outbound(2))
    assert first.accepted and first.provider_message_id is None
    assert not second.accepted and second.error == "HTTP 422: number blocked" and second.error_code == "422"


def test_a_2xx_outside_success_statuses_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/sms").respond_with_json({"id": "x"}, status=204)
    [result] = build("generic", _settings(httpserver, success_statuses=[200])).send(outbound(1))
    assert not result.accepted


@pytest.mark.parametrize("template, problem", [
    ('{"to": {{to}}, "text": "{{text}}"}', "not valid JSON"),
    ('{"to": "{{to}}"}', "{{text}}"),
])
def test_bad_templates_are_refused(template: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match="settings.body_template") as caught:
        build("generic", {"url": "http://gw.test/sms", "body_template": template})
    assert problem in caught.value.message


def test_dig_follows_dicts_and_list_indexes() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert generic.dig(data, "a.b.1.c") == 2
    assert generic.dig(data, "a.x.c") is None and generic.dig(data, "a.b.5.c") is None
