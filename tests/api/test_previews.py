"""Previews: what a message will look like and cost, for one contact and for an audience."""

from __future__ import annotations

import pytest

from core import db, pricing, provider_accounts
from tests.factories import Tenant


@pytest.fixture
def t(client, rt) -> Tenant:
    t = Tenant(rt, client)
    with db.transaction(rt.sessions) as session:
        provider_accounts.create_account(session, rt.settings, t.ws.id, "simulator",
                                         {"url": "http://127.0.0.1:9", "secret": "s"}, is_default=True)
        pricing.upsert_prices(session, t.ws.id, "simulator", [pricing.PriceRow("48", pricing.Decimal("0.07"), "PLN")])
    return t


def post(t: Tenant, body: dict, path: str = "preview"):
    return t.call("POST", f"/api/v1/messages/{path}", "viewer", json=body)


def test_preview_renders_for_a_contact_and_prices_it(t):
    cid = t.call("POST", "/api/v1/contacts", json={"phone": "+48600100200",
                                                   "attributes": {"first_name": "Łucja"}}).json["id"]
    result = post(t, {"text": "Hi {{ first_name }}!", "contact_id": cid}).json
    assert result["text"] == "Hi Łucja!"
    assert result["analysis"]["encoding"] == "UCS-2" and result["analysis"]["parts"] == 1
    assert result["highlights"]["unicode"] == [[3, "Ł"]]
    assert result["cost"] == {"price_per_part": "0.07000", "currency": "PLN", "per_message": "0.07000"}
    assert result["status"] == "ok"


def test_short_link_length_is_what_is_counted(t, settings):
    text = "Sale: https://shop.example/" + "a" * 200
    result = post(t, {"text": text, "variables": {}}).json
    assert "shop.example" not in result["text"]
    assert result["text"].startswith(f"Sale: {settings.base_url}/")
    assert result["analysis"]["units"] == len(result["text"])
    raw = post(t, {"text": text, "shorten_links": False}).json
    assert raw["analysis"]["parts"] == 2 and result["analysis"]["parts"] == 1


def test_suggestions_offer_gsm_lookalikes_with_parts_saved(t):
    text = "“Sale” — 50% off… " + "x" * 60
    result = post(t, {"text": text}).json
    assert result["analysis"]["encoding"] == "UCS-2" and result["analysis"]["parts"] == 2
    assert result["suggestion"]["parts_saved"] == 1
    assert result["text"] == text  # offered, never applied


def test_missing_variable_and_over_max_parts_say_why(t):
    missing = post(t, {"text": "Hi {{ first_name }}"}).json
    assert missing["status"] == "enqueue_failed" and "first_name" in missing["reason"]
    long = post(t, {"text": "x" * 200, "max_parts": 1}).json
    assert long["status"] == "enqueue_failed" and "max_parts 1" in long["reason"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "empty"), ("x" * 10001, "longer"), ("a\x00b", "NUL"), ("a\ud800b", "surrogate"),
     ("{{ first_name ", "line 1"), ("{{ ''.__class__ }}", "unsafe")],
)
def test_bad_text_is_422_naming_the_field(t, text, fragment):
    response = post(t, {"text": text})
    assert response.status_code == 422
    assert "text" in response.json["errors"]["json"] and fragment in response.json["message"]


def test_audience_preview_counts_parts_encodings_failures_and_cost(t):
    for i, name in enumerate(["Anna", "Łukasz", None, "Ola"]):
        attrs = {"first_name": name} if name else {}
        t.call("POST", "/api/v1/contacts", json={"phone": f"+4860010020{i}", "attributes": attrs})
    result = post(t, {"text": "Hi {{ first_name }}, " + "x" * 150, "audience": {"filter": {"status": "active"}},
                      "consent_category": None}, "preview-audience").json
    assert result["recipients"] == 4 and result["sampled"] is False
    assert result["enqueue_failed"] == 1
    assert result["encodings"] == {"GSM-7": 2, "UCS-2": 1}
    # 159 and 158 GSM-7 characters fit one part; 161 UCS-2 units take three parts of 67.
    assert result["parts"] == {"min": 1, "avg": 1.667, "max": 3}
    assert result["estimated_cost"] == "0.35" and result["currency"] == "PLN"  # (1 + 3 + 1) x 0.07
