"""Tests for core/pricing.py: validation, longest-prefix lookup, cost, upserts, CSV import and quotes."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from core import db, pricing
from core.errors import ImportFailed, InvalidInput, InvalidPhone, NotFound
from core.pricing import PriceBook, PriceRow
from tests.factories import make_workspace

D = Decimal


@pytest.fixture
def ws(rt):
    return make_workspace(rt)


def upsert(rt, ws_id: int, provider: str, *rows: tuple[str, str, str]) -> tuple[int, int]:
    with db.transaction(rt.sessions) as session:
        return pricing.upsert_prices(session, ws_id, provider, [PriceRow(*row) for row in rows])


def import_csv(rt, ws_id: int, content: str, provider: str = "sinch") -> pricing.PriceImport:
    with db.transaction(rt.sessions) as session:
        return pricing.import_prices_csv(session, ws_id, provider, io.StringIO(content))


def book(rt, ws_id: int, provider: str = "sinch") -> PriceBook:
    with rt.sessions() as session:
        return PriceBook.load(session, ws_id, provider)


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "stored"), [("48", "48"), ("+4850", "4850"), (" 48 50 ", "4850"), (1, "1")])
def test_prefix_is_stored_as_e164_digits(written, stored):
    assert PriceRow(written, D("0.1"), "PLN").prefix == stored


@pytest.mark.parametrize("bad", ["", "048", "123456789", "4a", "+", None])
def test_bad_prefix_names_the_field(bad):
    with pytest.raises(InvalidInput) as err:
        PriceRow(bad, D("0.1"), "PLN")
    assert err.value.field == "prefix"


@pytest.mark.parametrize(
    ("written", "stored"),
    [("0.07", "0.07000"), ("0,07", "0.07000"), (0.1, "0.10000"), (2, "2.00000"), ("0.123450", "0.12345"),
     ("0", "0.00000"), (" 1e-3 ", "0.00100")],
)
def test_price_takes_dot_or_comma_and_keeps_five_decimals(written, stored):
    assert str(PriceRow("48", written, "PLN").price_per_part) == stored


@pytest.mark.parametrize("bad", ["-0.01", "0.123456", "abc", "NaN", "Infinity", "1,000.5", "", True, None, "1e9"])
def test_bad_price_names_the_field(bad):
    with pytest.raises(InvalidInput) as err:
        PriceRow("48", bad, "PLN")
    assert err.value.field == "price_per_part"


def test_currency_is_three_letters_upper_case():
    assert PriceRow("48", "1", " pln ").currency == "PLN"
    for bad in ("PL", "PLNX", "P1N", ""):
        with pytest.raises(InvalidInput) as err:
            PriceRow("48", "1", bad)
        assert err.value.field == "currency"


# -- lookup and cost --------------------------------------------------------------------------------------


def test_longest_prefix_wins():
    prices = PriceBook({"48": (D("0.10"), "PLN"), "4850": (D("0.05"), "PLN"), "1": (D("0.01"), "USD")})
    assert prices.price_for("+48501234567") == (D("0.05"), "PLN")
    assert prices.price_for("+48601234567") == (D("0.10"), "PLN")
    assert prices.price_for("+12025550123") == (D("0.01"), "USD")
    assert prices.price_for("48501234567") == (D("0.05"), "PLN")  # digits without '+' work too


def test_unknown_country_has_no_price():
    prices = PriceBook({"48": (D("0.10"), "PLN")})
    assert prices.price_for("+4915123456789") is None
    assert prices.price_for("+4915123456789") is None  # the cached miss answers the same
    assert PriceBook({}).price_for("+48600100200") is None


def test_long_prefixes_of_single_networks_win_over_cached_country_prices():
    prices = PriceBook({"48": (D("0.10"), "PLN"), "48600123": (D("0.20"), "PLN"), "49": (D("0.30"), "EUR")})
    for n in range(100):
        for _ in range(2):  # the second time from the cache
            assert prices.price_for(f"+48600123{n:03d}") == (D("0.20"), "PLN")
            assert prices.price_for(f"+48600124{n:03d}") == (D("0.10"), "PLN")
            assert prices.price_for(f"+4915{n:07d}") == (D("0.30"), "EUR")


def test_any_book_agrees_with_a_plain_longest_prefix_search():
    table = {p: (D(i), "PLN") for i, p in enumerate(["1", "12", "123456", "1234567", "12345678", "4", "48", "4850"])}
    prices = PriceBook(table)
    for number in ["+1", "+12", "+1234", "+123456", "+12345679", "+123456789012", "+4", "+48501", "+485", "+5"]:
        digits = number[1:]
        expected = next((table[digits[:n]] for n in range(len(digits), 0, -1) if digits[:n] in table), None)
        assert prices.price_for(number) == expected == prices.price_for(number), number


def test_message_cost_is_parts_times_price():
    assert pricing.message_cost(3, D("0.07")) == D("0.21000")
    assert pricing.message_cost(1, D("0.12345")) == D("0.12345")
    assert pricing.message_cost(6, D("0.00001")) == D("0.00006")


def test_book_loads_only_this_workspace_and_provider(rt, ws):
    other = make_workspace(rt, "Other")
    upsert(rt, ws.id, "sinch", ("48", "0.10", "PLN"))
    upsert(rt, ws.id, "twilio", ("48", "0.50", "PLN"))
    upsert(rt, other.id, "sinch", ("48", "0.90", "PLN"), ("4860", "0.80", "PLN"))
    prices = book(rt, ws.id)
    assert len(prices) == 1 and prices.currencies == {"PLN"}
    assert prices.price_for("+48600100200") == (D("0.10000"), "PLN")
    assert book(rt, ws.id, "Twilio").price_for("+48600100200") == (D("0.50000"), "PLN")
    assert book(rt, ws.id, "cm").price_for("+48600100200") is None


# -- writing prices -----------------------------------------------------------------------------------------


def test_upsert_creates_then_updates(rt, ws):
    assert upsert(rt, ws.id, "sinch", ("48", "0.10", "PLN"), ("49", "0.05", "EUR")) == (2, 0)
    assert upsert(rt, ws.id, "sinch", ("48", "0.08", "PLN"), ("4850", "0.06", "PLN")) == (1, 1)
    with rt.sessions() as session:
        rows = {p.prefix: (p.price_per_part, p.currency) for p in pricing.list_prices(session, ws.id, "sinch")}
    assert rows == {"48": (D("0.08"), "PLN"), "49": (D("0.05"), "EUR"), "4850": (D("0.06"), "PLN")}


def test_set_price_returns_the_current_row(rt, ws):
    with db.transaction(rt.sessions) as session:
        pricing.set_price(session, ws.id, "sinch", PriceRow("48", "0.10", "PLN"))
        price = pricing.set_price(session, ws.id, "sinch", PriceRow("48", "0.12", "PLN"))
        assert (price.prefix, price.price_per_part) == ("48", D("0.12"))


def test_delete_price(rt, ws):
    upsert(rt, ws.id, "sinch", ("48", "0.10", "PLN"))
    with db.transaction(rt.sessions) as session:
        pricing.delete_price(session, ws.id, "sinch", "+48")
        with pytest.raises(NotFound):
            pricing.delete_price(session, ws.id, "sinch", "48")


# -- CSV import ---------------------------------------------------------------------------------------------


def test_csv_import_with_countries_prefixes_and_comma_decimals(rt, ws):
    report = import_csv(rt, ws.id, "country;prefix;price;currency\nPL;;0,07;PLN\n;4850;0,05;pln\nde;;0.09;EUR\n")
    assert (report.rows_total, report.created, report.updated, report.failed) == (3, 3, 0, 0)
    prices = book(rt, ws.id)
    assert prices.price_for("+48600100200") == (D("0.07"), "PLN")
    assert prices.price_for("+48501234567") == (D("0.05"), "PLN")
    assert prices.price_for("+4915123456789") == (D("0.09"), "EUR")


def test_csv_import_reports_bad_rows_by_line_and_keeps_good_ones(rt, ws):
    content = (
        "Prefix,Price,Currency\n"
        "48,0.07,PLN\n"
        "49,abc,EUR\n"
        "\n"
        "0044,0.05,GBP\n"
        "48,0.08,PLN\n"
        "420,0.01,CZ\n"
        '"1","0,02",USD\n'
    )
    report = import_csv(rt, ws.id, content)
    assert (report.rows_total, report.created, report.failed) == (6, 2, 4)
    errors = {e.line: (e.column, e.reason) for e in report.errors}
    assert errors[3][0] == "price" and "not a number" in errors[3][1]
    assert errors[5][0] == "prefix"
    assert errors[6] == ("prefix", "prefix 48 is already priced on line 2")
    assert errors[7][0] == "currency"
    assert book(rt, ws.id).price_for("+12025550123") == (D("0.02"), "USD")


def test_csv_import_checks_countries(rt, ws):
    report = import_csv(rt, ws.id, "country,prefix,price,currency\nXX,,1,EUR\nPL,4950,1,PLN\nPL,4850,1,PLN\n")
    assert report.created == 1
    assert [(e.line, e.column) for e in report.errors] == [(2, "country"), (3, "prefix")]


def test_countries_sharing_a_calling_code_are_one_prefix(rt, ws):
    report = import_csv(rt, ws.id, "country,price,currency\nUS,0.01,USD\nCA,0.02,USD\n")
    assert report.created == 1
    assert report.errors[0].line == 3 and "already priced on line 2" in report.errors[0].reason


def test_csv_import_updates_existing_prices(rt, ws):
    upsert(rt, ws.id, "sinch", ("48", "0.10", "PLN"))
    report = import_csv(rt, ws.id, "prefix\tprice\tcurrency\n48\t0.09\tPLN\n49\t0.05\tEUR\n")
    assert (report.created, report.updated) == (1, 1)
    assert book(rt, ws.id).price_for("+48600100200") == (D("0.09"), "PLN")


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("prefix,currency\n48,PLN\n", "price"), ("price,currency\n1,PLN\n", "prefix or country")],
)
def test_csv_without_needed_columns_fails_whole(rt, ws, content, message):
    with pytest.raises(ImportFailed, match=message):
        import_csv(rt, ws.id, content)


def test_csv_bytes_in_windows_1250_are_read():
    assert pricing.decode_csv("kraj;cena\nPL;0,07 zł\n".encode("cp1250")) == "kraj;cena\nPL;0,07 zł\n"
    assert pricing.decode_csv("\ufeffprefix".encode()) == "prefix"


# -- quotes ---------------------------------------------------------------------------------------------------


def test_quote_uses_the_longest_prefix_and_the_workspace_region(rt, ws):
    upsert(rt, ws.id, "sinch", ("48", "0.10", "PLN"), ("4860", "0.07", "PLN"))
    with rt.sessions() as session:
        found = pricing.quote(session, ws, "sinch", "600 100 200", 3)
        assert (found.phone, found.prefix, found.price_per_part, found.cost) == (
            "+48600100200", "4860", D("0.07"), D("0.21")
        )
        missing = pricing.quote(session, ws, "sinch", "+4915123456789")
        assert (missing.prefix, missing.price_per_part, missing.currency, missing.cost) == (None, None, None, None)
        with pytest.raises(InvalidPhone):
            pricing.quote(session, ws, "sinch", "12")
        with pytest.raises(InvalidInput):
            pricing.quote(session, ws, "sinch", "+48600100200", 0)
