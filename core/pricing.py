"""Price lists: price per message part by provider and E.164 prefix (longest prefix wins), and message cost."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import islice
from typing import Any, TextIO

import phonenumbers
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from core import db, phones
from core.errors import ImportFailed, InvalidInput, NotFound
from core.importfile import sniff_dialect
from core.importmap import RowError
from core.models import Price, Workspace
from core.models.base import utcnow

PLACES = Decimal("0.00001")  # prices and costs keep 5 decimals (Numeric(12, 5))
MAX_PRICE = Decimal(10) ** 7  # Numeric(12, 5) holds 7 digits before the point
MAX_PREFIX_DIGITS = 8
MAX_PARTS = 255  # the most parts a concatenated SMS can have
HEAD_DIGITS = 5  # PriceBook caches answers by a number's first 5 digits: at most 100,000 entries
MAX_FILE_BYTES = 16 * 1024 * 1024  # a CSV price list upload
MAX_IMPORT_ROWS = 100_000
MAX_REPORTED_ERRORS = 1000  # every failed row is counted; the first ones are listed with line and reason
UPSERT_CHUNK = 500  # rows per INSERT .. ON CONFLICT statement

_UNKNOWN = object()
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_PREFIX = re.compile(rf"[1-9][0-9]{{0,{MAX_PREFIX_DIGITS - 1}}}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COLUMNS = {"prefix": "prefix", "country": "country", "price": "price", "price_per_part": "price",
            "currency": "currency"}


def check_provider(raw: object) -> str:
    value = str(raw or "").strip().lower()
    if not _PROVIDER.fullmatch(value):
        raise InvalidInput("provider", f"{raw!r} is not a provider name (letters, digits, '_.-', up to 32)", raw)
    return value


def check_prefix(raw: object, name: str = "prefix") -> str:
    """E.164 digits without '+': 1 to 8 digits, never starting with 0 ('+48' is read as '48')."""
    value = str(raw or "").strip().replace(" ", "").removeprefix("+")
    if not _PREFIX.fullmatch(value):
        raise InvalidInput(name, f"{raw!r} is not a prefix: 1 to {MAX_PREFIX_DIGITS} digits of an E.164 number, "
                                 "without a leading 0", raw)
    return value


def check_price(raw: object, name: str = "price_per_part") -> Decimal:
    """A price >= 0 with at most 5 decimals; '0,05' and '0.05' are the same; JSON floats are read as written."""
    if isinstance(raw, bool) or raw is None:
        raise InvalidInput(name, f"{raw!r} is not a number", raw)
    text = repr(raw) if isinstance(raw, float) else str(raw).strip()
    if "," in text and "." in text:
        raise InvalidInput(name, f"{raw!r}: use one decimal separator and no thousands separator", raw)
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise InvalidInput(name, f"{raw!r} is not a number", raw) from None
    if not value.is_finite():
        raise InvalidInput(name, f"{raw!r} is not a number", raw)
    if value < 0:
        raise InvalidInput(name, f"{raw!r} must not be negative", raw)
    if value >= MAX_PRICE:
        raise InvalidInput(name, f"{raw!r} must be below {MAX_PRICE}", raw)
    if value != value.quantize(PLACES):
        raise InvalidInput(name, f"{raw!r} has more than 5 decimals", raw)
    return value.quantize(PLACES)


def check_currency(raw: object, name: str = "currency") -> str:
    value = str(raw or "").strip().upper()
    if not _CURRENCY.fullmatch(value):
        raise InvalidInput(name, f"{raw!r} is not an ISO 4217 currency code (3 letters, like PLN)", raw)
    return value


@dataclass(frozen=True)
class PriceRow:
    """One validated price; building it checks and normalises every field (raises InvalidInput)."""

    prefix: str
    price_per_part: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", check_prefix(self.prefix))
        object.__setattr__(self, "price_per_part", check_price(self.price_per_part))
        object.__setattr__(self, "currency", check_currency(self.currency))


# Built once: on the accept path of the transactional API, building a statement per request cost more than
# running it. Core rows, no ORM entities.
_PRICE = Price.__table__.c
_PRICES = select(_PRICE.prefix, _PRICE.price_per_part, _PRICE.currency).where(
    _PRICE.workspace_id == bindparam("ws"), _PRICE.provider == bindparam("provider"))
_PRICES_OF_PREFIXES = _PRICES.where(_PRICE.prefix.in_(bindparam("prefixes", expanding=True)))


class PriceBook:
    """A provider's prices for one workspace in memory: `price_for` is a few dict lookups, no DB access.

    Answers for prefixes up to HEAD_DIGITS long are cached by the number's first HEAD_DIGITS digits (at most
    10**HEAD_DIGITS entries); longer prefixes (rare: single networks) are looked up by length only for the
    heads that have them.
    """

    def __init__(self, prices: Mapping[str, tuple[Decimal, str]]) -> None:
        self._prices = dict(prices)
        lengths = sorted({len(p) for p in self._prices}, reverse=True)
        self._short = [n for n in lengths if n <= HEAD_DIGITS]
        self._long = [n for n in lengths if n > HEAD_DIGITS]
        self._head = min(HEAD_DIGITS, lengths[0]) if lengths else 0
        self._deep = {p[:HEAD_DIGITS] for p in self._prices if len(p) > HEAD_DIGITS}
        self._cache: dict[str, tuple[Decimal, str] | None] = {}

    @classmethod
    def load(cls, session: Session, workspace_id: int, provider: str,
             numbers: Sequence[str] | None = None) -> PriceBook:
        """The whole price list; with `numbers`, only the prices whose prefix could match one of them (a
        request of a few messages needs one or two rows of a list of hundreds)."""
        params: dict[str, Any] = {"ws": workspace_id, "provider": provider.strip().lower()}
        query = _PRICES
        if numbers is not None:
            digits = {n[1:] if n[:1] == "+" else n for n in numbers}
            params["prefixes"] = sorted({d[:i] for d in digits for i in range(1, len(d) + 1)})
            query = _PRICES_OF_PREFIXES
        rows = session.connection().execute(query, params)
        return cls({prefix: (Decimal(price).quantize(PLACES), currency) for prefix, price, currency in rows})

    def __len__(self) -> int:
        return len(self._prices)

    @property
    def currencies(self) -> set[str]:
        return {currency for _, currency in self._prices.values()}

    def price_for(self, e164: str) -> tuple[Decimal, str] | None:
        """(price per part, currency) of the longest prefix matching the number, or None."""
        digits = e164[1:] if e164[:1] == "+" else e164
        head = digits[: self._head]
        found = self._cache.get(head, _UNKNOWN)
        if found is _UNKNOWN:
            found = self._cache[head] = self._longest(head, self._short)
        if head in self._deep:
            return self._longest(digits, self._long) or found
        return found  # type: ignore[return-value]

    def _longest(self, digits: str, lengths: list[int]) -> tuple[Decimal, str] | None:
        for length in lengths:
            found = self._prices.get(digits[:length])
            if found is not None:
                return found
        return None


def message_cost(parts: int, price: Decimal) -> Decimal:
    """parts × price per part, to 5 decimals."""
    return (price * parts).quantize(PLACES, ROUND_HALF_UP)


def price_query(workspace_id: int, provider: str | None = None) -> Select[tuple[Price]]:
    query = select(Price).where(Price.workspace_id == workspace_id)
    if provider:
        query = query.where(Price.provider == check_provider(provider))
    return query.order_by(Price.provider, Price.prefix)


def list_prices(session: Session, workspace_id: int, provider: str | None = None) -> list[Price]:
    return list(session.scalars(price_query(workspace_id, provider)))


def get_price(session: Session, workspace_id: int, provider: str, prefix: str) -> Price:
    price = session.scalar(
        select(Price).where(
            Price.workspace_id == workspace_id,
            Price.provider == check_provider(provider),
            Price.prefix == check_prefix(prefix),
        )
    )
    if price is None:
        raise NotFound(f"no price for prefix {prefix!r} with provider {provider!r}")
    return price


def upsert_prices(session: Session, workspace_id: int, provider: str, rows: Iterable[PriceRow]) -> tuple[int, int]:
    """Creates or replaces prices by prefix (a repeated prefix: the last row wins). Returns (created, updated)."""
    provider = check_provider(provider)
    by_prefix = {row.prefix: row for row in rows}
    insert = db.insert_for(session)
    created = updated = 0
    now = utcnow()
    values = iter(by_prefix.values())
    while chunk := list(islice(values, UPSERT_CHUNK)):
        prefixes = [row.prefix for row in chunk]
        existing = set(session.scalars(select(Price.prefix).where(
            Price.workspace_id == workspace_id, Price.provider == provider, Price.prefix.in_(prefixes)
        )))
        statement = insert(Price)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "provider", "prefix"],
            set_={"price_per_part": statement.excluded.price_per_part, "currency": statement.excluded.currency,
                  "updated_at": statement.excluded.updated_at},
        )
        session.execute(statement, [
            {"workspace_id": workspace_id, "provider": provider, "prefix": row.prefix,
             "price_per_part": row.price_per_part, "currency": row.currency, "updated_at": now}
            for row in chunk
        ])
        updated += len(existing)
        created += len(chunk) - len(existing)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Price):
            session.expire(obj)  # loaded before the bulk upsert, it would show the old price
    return created, updated


def set_price(session: Session, workspace_id: int, provider: str, row: PriceRow) -> Price:
    upsert_prices(session, workspace_id, provider, [row])
    return get_price(session, workspace_id, provider, row.prefix)


def delete_price(session: Session, workspace_id: int, provider: str, prefix: str) -> None:
    session.delete(get_price(session, workspace_id, provider, prefix))
    session.flush()


@dataclass(frozen=True)
class Quote:
    provider: str
    phone: str
    parts: int
    prefix: str | None = None
    price_per_part: Decimal | None = None
    currency: str | None = None
    cost: Decimal | None = None


def quote(session: Session, ws: Workspace, provider: str, phone: str, parts: int = 1) -> Quote:
    """What `parts` parts to `phone` cost with `provider`; price fields are None when no prefix matches."""
    provider = check_provider(provider)
    if isinstance(parts, bool) or not 1 <= parts <= MAX_PARTS:
        raise InvalidInput("parts", f"must be 1 to {MAX_PARTS}", parts)
    e164 = phones.normalize(phone, ws.default_region)
    digits = e164[1:]
    candidates = [digits[:n] for n in range(1, min(len(digits), MAX_PREFIX_DIGITS) + 1)]
    match = session.execute(
        select(Price.prefix, Price.price_per_part, Price.currency).where(
            Price.workspace_id == ws.id, Price.provider == provider, Price.prefix.in_(candidates)
        )
    ).all()
    if not match:
        return Quote(provider, e164, parts)
    prefix, price, currency = max(match, key=lambda row: len(row[0]))
    price = Decimal(price).quantize(PLACES)
    return Quote(provider, e164, parts, prefix, price, currency, message_cost(parts, price))


@dataclass
class PriceImport:
    """What a CSV import did: counts, and the rows it skipped with line, column and reason."""

    provider: str
    rows_total: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    def fail(self, error: RowError) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1250, the two encodings spreadsheets here save in."""
    if len(data) > MAX_FILE_BYTES:
        raise ImportFailed(f"the price list is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1250", errors="replace")


def import_prices_csv(session: Session, workspace_id: int, provider: str, text_stream: TextIO) -> PriceImport:
    """Imports a CSV price list: columns `prefix` or `country` (ISO 3166 alpha-2), `price`, `currency`.

    The delimiter is sniffed (',', ';', tab, '|'); prices take '.' or ',' as the decimal point. Good rows are
    upserted; bad rows are skipped and reported. A prefix given twice is an error on its second line.
    Raises ImportFailed when the file cannot be read at all (no header, missing columns, too many rows).
    """
    report = PriceImport(check_provider(provider))
    text = text_stream.read(MAX_FILE_BYTES + 1)
    if len(text) > MAX_FILE_BYTES:
        raise ImportFailed(f"the price list is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    reader = csv.reader(io.StringIO(text, newline=""), sniff_dialect(text[:65536]))
    columns = _header(next(reader, None))
    rows: dict[str, tuple[int, PriceRow]] = {}
    line = reader.line_num + 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            report.rows_total += 1
            if report.rows_total > MAX_IMPORT_ROWS:
                raise ImportFailed(f"the price list has more than {MAX_IMPORT_ROWS} rows")
            _add_row(report, rows, line, {name: _cell(cells, i) for name, i in columns.items()})
        line = reader.line_num + 1
    report.created, report.updated = upsert_prices(
        session, workspace_id, report.provider, (row for _, row in rows.values())
    )
    return report


def _header(cells: list[str] | None) -> dict[str, int]:
    if not cells or not any(cell.strip() for cell in cells):
        raise ImportFailed("the file is empty (no header row)")
    columns: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = _COLUMNS.get(cell.strip().lower().replace(" ", "_"))
        if name and name not in columns:
            columns[name] = i
    missing = [name for name in ("price", "currency") if name not in columns]
    if "prefix" not in columns and "country" not in columns:
        missing.insert(0, "prefix or country")
    if missing:
        raise ImportFailed(f"missing column: {', '.join(missing)} (the header has {', '.join(cells)})")
    return columns


def _cell(cells: list[str], index: int) -> str:
    return cells[index].strip() if index < len(cells) else ""


def _add_row(report: PriceImport, rows: dict[str, tuple[int, PriceRow]], line: int, cells: dict[str, str]) -> None:
    try:
        prefix = _row_prefix(cells.get("prefix", ""), cells.get("country", ""))
        row = PriceRow(prefix, check_price(cells["price"], "price"), cells["currency"])
    except InvalidInput as exc:
        column = "price" if exc.field == "price_per_part" else exc.field
        report.fail(RowError(line, column, None if exc.value is None else str(exc.value), exc.message))
        return
    if row.prefix in rows:
        first = rows[row.prefix][0]
        report.fail(RowError(line, "prefix", row.prefix, f"prefix {row.prefix} is already priced on line {first}"))
        return
    rows[row.prefix] = (line, row)


def _row_prefix(prefix: str, country: str) -> str:
    """The row's prefix: the `prefix` cell, else the calling code of the `country` cell (PL → 48)."""
    code = ""
    if country:
        found = phonenumbers.country_code_for_region(country.upper()) if len(country) == 2 else 0
        if not found:
            raise InvalidInput("country", f"{country!r} is not an ISO 3166 country code (like PL)", country)
        code = str(found)
    if not prefix:
        if not code:
            raise InvalidInput("prefix", "give a prefix or a country", "")
        return code
    value = check_prefix(prefix)
    if code and not value.startswith(code):
        raise InvalidInput("prefix", f"{prefix!r} is not a number of {country.upper()} (+{code})", prefix)
    return value
