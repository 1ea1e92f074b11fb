"""Prices API: upsert and delete by provider and prefix, CSV import with a row report, quotes, roles, isolation."""

from __future__ import annotations

import io

import pytest

from tests.factories import Tenant

URL = "/api/v1/prices"


@pytest.fixture
def t(client, rt) -> Tenant:
    return Tenant(rt, client)


def put(t: Tenant, provider: str, prefix: str, price: object, currency: str = "PLN", role: str = "admin"):
    return t.call("PUT", f"{URL}/{provider}/{prefix}", role, json={"price_per_part": price, "currency": currency})


def upload(t: Tenant, content: bytes, provider: str | None = "sinch", role: str = "admin"):
    data: dict = {"file": (io.BytesIO(content), "prices.csv")}
    if provider is not None:
        data["provider"] = provider
    return t.call("POST", f"{URL}/import", role, data=data, content_type="multipart/form-data")


def quote(t: Tenant, query: str, role: str = "viewer"):
    return t.call("GET", f"{URL}/quote?{query}", role)


def test_put_creates_and_replaces_a_price(t):
    created = put(t, "sinch", "48", "0,07")
    assert created.status_code == 200, created.json
    assert {k: created.json[k] for k in ("provider", "prefix", "price_per_part", "currency")} == {
        "provider": "sinch", "prefix": "48", "price_per_part": "0.07000", "currency": "PLN"
    }
    assert put(t, "sinch", "+48", 0.1, "pln").json["price_per_part"] == "0.10000"
    assert t.call("GET", f"{URL}/sinch/48", "viewer").json["price_per_part"] == "0.10000"
    assert t.call("GET", URL).json["total"] == 1


def test_listing_filters_by_provider_and_pages(t):
    for prefix in ("48", "49", "4850"):
        put(t, "sinch", prefix, "0.05")
    put(t, "twilio", "48", "0.09")
    everything = t.call("GET", URL, "viewer").json
    assert everything["total"] == 4
    page = t.call("GET", f"{URL}?provider=sinch&page_size=2&page=2", "viewer").json
    # Sorted as text, so a country's prefixes stay together: 48, 4850, 49.
    assert page["total"] == 3 and [p["prefix"] for p in page["items"]] == ["49"]


def test_delete_price(t):
    put(t, "sinch", "48", "0.05")
    assert t.call("DELETE", f"{URL}/sinch/48").status_code == 204
    assert t.call("DELETE", f"{URL}/sinch/48").status_code == 404
    assert t.call("GET", f"{URL}/sinch/48").status_code == 404


@pytest.mark.parametrize(
    ("provider", "prefix", "price", "currency", "field"),
    [
        ("sinch", "048", "0.05", "PLN", "prefix"),
        ("sinch", "123456789", "0.05", "PLN", "prefix"),
        ("sinch", "4a", "0.05", "PLN", "prefix"),
        ("sinch", "48", "-1", "PLN", "price_per_part"),
        ("sinch", "48", "0.000001", "PLN", "price_per_part"),
        ("sinch", "48", "free", "PLN", "price_per_part"),
        ("sinch", "48", None, "PLN", "price_per_part"),
        ("sinch", "48", "0.05", "złoty", "currency"),
        ("Bad Name!", "48", "0.05", "PLN", "provider"),
    ],
)
def test_bad_price_is_422_naming_the_field(t, provider, prefix, price, currency, field):
    response = put(t, provider, prefix, price, currency)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]
    assert t.call("GET", URL).json["total"] == 0


def test_missing_fields_are_422(t):
    response = t.call("PUT", f"{URL}/sinch/48", json={"currency": "PLN"})
    assert response.status_code == 422 and "price_per_part" in response.json["errors"]["json"]


def test_import_counts_rows_and_reports_errors_by_line(t):
    content = "country;prefix;price;currency\nPL;;0,07;PLN\n;4850;0,05;PLN\nXX;;1;EUR\nDE;;abc;EUR\n"
    response = upload(t, content.encode("cp1250"))
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["provider"], report["rows_total"], report["created"], report["updated"], report["failed"]) == (
        "sinch", 4, 2, 0, 2
    )
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(4, "country"), (5, "price")]
    assert quote(t, "provider=sinch&phone=%2B48501234567").json["price_per_part"] == "0.05000"
    again = upload(t, b"prefix,price,currency\n48,0.06,PLN\n").json
    assert (again["created"], again["updated"]) == (0, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"provider": None}, "provider"), ({"provider": "Bad Name!"}, "provider")]
)
def test_import_without_a_good_provider_is_422(t, kwargs, field):
    response = upload(t, b"prefix,price,currency\n48,0.06,PLN\n", **kwargs)
    assert response.status_code == 422
    assert field in str(response.json["errors"])


def test_import_of_an_unusable_file_is_422(t):
    response = upload(t, b"phone,name\n600100200,Anna\n")
    assert response.status_code == 422 and "missing column" in response.json["message"]
    no_file = t.call("POST", f"{URL}/import", data={"provider": "sinch"}, content_type="multipart/form-data")
    assert no_file.status_code == 422


def test_quote_gives_price_per_part_currency_and_cost(t):
    put(t, "sinch", "48", "0.10")
    put(t, "sinch", "4860", "0.07")
    response = quote(t, "provider=sinch&phone=600100200&parts=3")
    assert response.status_code == 200, response.json
    assert response.json == {
        "provider": "sinch", "phone": "+48600100200", "parts": 3, "prefix": "4860",
        "price_per_part": "0.07000", "currency": "PLN", "cost": "0.21000",
    }
    assert quote(t, "provider=sinch&phone=%2B48700100200").json["cost"] == "0.10000"


def test_quote_without_a_price_has_null_price(t):
    put(t, "sinch", "48", "0.10")
    body = quote(t, "provider=sinch&phone=%2B4915123456789").json
    assert (body["prefix"], body["price_per_part"], body["currency"], body["cost"]) == (None, None, None, None)
    assert quote(t, "provider=twilio&phone=%2B48600100200").json["cost"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("provider=sinch&phone=12", "phone"), ("provider=sinch&phone=600100200&parts=0", "parts"),
     ("phone=600100200", "provider")],
)
def test_bad_quote_is_422_naming_the_field(t, query, field):
    response = quote(t, query)
    assert response.status_code == 422
    assert field in str(response.json["errors"])


def test_only_admins_change_prices(t):
    put(t, "sinch", "48", "0.10")
    for role in ("viewer", "editor"):
        assert put(t, "sinch", "48", "0.01", role=role).status_code == 403
        assert t.call("DELETE", f"{URL}/sinch/48", role).status_code == 403
        assert upload(t, b"prefix,price,currency\n48,0.01,PLN\n", role=role).status_code == 403
    assert t.call("GET", f"{URL}/sinch/48", "viewer").json["price_per_part"] == "0.10000"
    assert quote(t, "provider=sinch&phone=600100200", "viewer").status_code == 200


def test_another_workspace_sees_and_touches_nothing(client, rt):
    a, b = Tenant(rt, client, "A"), Tenant(rt, client, "B")
    put(a, "sinch", "48", "0.10")
    assert b.call("GET", URL).json["total"] == 0
    assert b.call("GET", f"{URL}/sinch/48").status_code == 404
    assert b.call("DELETE", f"{URL}/sinch/48").status_code == 404
    assert quote(b, "provider=sinch&phone=600100200").json["cost"] is None
    put(b, "sinch", "48", "0.99")  # B's own price list, same provider and prefix
    assert a.call("GET", f"{URL}/sinch/48").json["price_per_part"] == "0.10000"
    assert quote(a, "provider=sinch&phone=600100200").json["cost"] == "0.10000"
