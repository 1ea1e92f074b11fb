"""Column mappings for imports, and turning one raw row into a ContactRow or a row error."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core import phones
from core.contacts import ContactRow
from core.errors import ImportFailed, InvalidInput, InvalidPhone
from core.importfile import RawRow

PHONE_HEADERS = ("phone", "mobile", "msisdn", "telefon", "tel", "phone_number", "mobile_phone", "mobilephone", "gsm")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
TRUE = frozenset({"1", "true", "yes", "y", "tak", "t", "opted_in", "in", "x"})
FALSE = frozenset({"0", "false", "no", "n", "nie", "f", "opted_out", "out"})
FORMULA_START = ("=", "+", "-", "@")
TAG_SEPARATORS = re.compile(r"[,;|]")


@dataclass(frozen=True)
class ColumnMap:
    """Which file column feeds which contact field, by column index."""

    phone: int
    phone_column: str
    attributes: dict[str, int] = field(default_factory=dict)
    consents: dict[str, int] = field(default_factory=dict)
    external_ids: dict[str, int] = field(default_factory=dict)
    tags: int | None = None
    width: int = 0  # header length


def parse_map_option(text: str) -> dict[str, str]:
    """`phone=Mobile,first_name=Name` (the CLI form) → {"phone": "Mobile", "first_name": "Name"}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        target, sep, column = part.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise InvalidInput("map", f"{part!r} is not field=Column", part)
        out[target.strip()] = column.strip()
    return out


def default_mapping(header: Sequence[str]) -> dict[str, str]:
    """Without a mapping: the phone-like column is the phone, every other column an attribute."""
    mapping: dict[str, str] = {}
    for column in header:
        key = re.sub(r"[^A-Za-z0-9_]+", "_", column.strip()).strip("_").lower()
        if not key:
            continue
        if "phone" not in mapping and key in PHONE_HEADERS:
            mapping["phone"] = column
        elif key not in mapping and ATTRIBUTE_NAME.match(key):
            mapping[key] = column
    return mapping


def check_mapping(mapping: Mapping[str, str]) -> None:
    """Validates field names of a mapping before any file is read (API → 422)."""
    if "phone" not in mapping:
        raise InvalidInput("mapping", "must map the phone field, e.g. phone=Mobile", dict(mapping))
    for target in mapping:
        kind, _, name = target.partition(".")
        if kind in ("consent", "external_id") and name:
            continue
        if target in ("phone", "tags") or ATTRIBUTE_NAME.match(target):
            continue
        raise InvalidInput(f"mapping.{target}", "is not a field name (letters, digits, _), consent.X or external_id.X")


def resolve(mapping: Mapping[str, str], header: Sequence[str]) -> ColumnMap:
    """Binds a mapping to a header; a column the mapping names but the file lacks fails the import."""
    check_mapping(mapping)
    index = {name.strip().lower(): i for i, name in reversed(list(enumerate(header)))}
    missing = [col for col in mapping.values() if col.strip().lower() not in index]
    if missing:
        raise ImportFailed(f"column(s) {', '.join(map(repr, missing))} not in the file; it has {list(header)}")
    at = {target: index[col.strip().lower()] for target, col in mapping.items()}
    cmap = ColumnMap(phone=at.pop("phone"), phone_column=mapping["phone"], tags=at.pop("tags", None), width=len(header))
    for target, i in at.items():
        kind, _, name = target.partition(".")
        if kind == "consent":
            cmap.consents[name] = i
        elif kind == "external_id":
            cmap.external_ids[name] = i
        else:
            cmap.attributes[target] = i
    return cmap


def unescape(cell: str) -> str:
    """Undoes our export's formula escaping ('=x → =x), so an export imports back unchanged."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_START:
        return cell[1:]
    return cell


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    value: str | None
    reason: str


def phone_text(row: RawRow, cmap: ColumnMap) -> str:
    """The phone cell as `convert` parses it; "" for a row that fails before its phone is read."""
    if row.problem or len(row.cells) != cmap.width:
        return ""
    return unescape(row.cells[cmap.phone].strip())


def phone_texts(rows: Sequence[RawRow], cmap: ColumnMap) -> list[str]:
    """`phone_text` of each row (what `phones.normalize_many` gets for `convert_parsed`)."""
    width, at = cmap.width, cmap.phone
    return [
        unescape(row.cells[at].strip()) if not row.problem and len(row.cells) == width else "" for row in rows
    ]


def convert(row: RawRow, cmap: ColumnMap, header: Sequence[str], region: str) -> ContactRow | RowError:
    """One raw row → a ContactRow, or the reason it cannot be imported (the row is then skipped whole)."""
    try:
        phone: str | None = phones.normalize(phone_text(row, cmap), region)
    except InvalidPhone:
        phone = None
    return convert_parsed([row], [phone], cmap, header)[0][1]


def convert_parsed(
    rows: Sequence[RawRow], parsed: Sequence[str | None], cmap: ColumnMap, header: Sequence[str]
) -> list[tuple[int, ContactRow | RowError]]:
    """`convert_chunk` with the phones already parsed: `parsed` is `phones.normalize_many` of `phone_texts`.

    One loop with the mapping in locals: it runs for every row of every import (~5 µs a row).
    """
    attributes_at, consents_at = tuple(cmap.attributes.items()), tuple(cmap.consents.items())
    externals_at, tags_at, width = tuple(cmap.external_ids.items()), cmap.tags, cmap.width
    out: list[tuple[int, ContactRow | RowError]] = []
    for row, phone in zip(rows, parsed, strict=True):
        cells = row.cells
        if phone is None or row.problem or len(cells) != width or "\x00" in "".join(cells):
            out.append((row.line, _row_error(row, cmap, header)))
            continue
        attributes: dict[str, str] = {}
        for name, i in attributes_at:
            if value := cells[i].strip():
                attributes[name] = unescape(value) if value[0] == "'" else value
        consents = _consents(row, consents_at, header) if consents_at else {}
        if isinstance(consents, RowError):
            out.append((row.line, consents))
            continue
        tags = _tags(cells[tags_at]) if tags_at is not None else ()
        externals = {src: value for src, i in externals_at if (value := cells[i].strip())} if externals_at else {}
        out.append((row.line, ContactRow(phone, attributes, consents, tags, externals)))
    return out


def _consents(row: RawRow, consents_at: Sequence[tuple[str, int]], header: Sequence[str]) -> dict[str, bool] | RowError:
    consents: dict[str, bool] = {}
    for category, i in consents_at:
        if not (value := row.cells[i].strip().lower()):
            continue
        if value not in TRUE and value not in FALSE:
            return RowError(row.line, header[i], row.cells[i][:255], "consent must be yes/no, true/false or 1/0")
        consents[category] = value in TRUE
    return consents


def _row_error(row: RawRow, cmap: ColumnMap, header: Sequence[str]) -> RowError:
    """Why a broken row, or one whose phone did not parse, is skipped (the first reason, in this order)."""
    if row.problem:
        return RowError(row.line, None, None, row.problem)
    if len(row.cells) != cmap.width:
        return RowError(row.line, None, None, f"row has {len(row.cells)} fields, the header has {cmap.width}")
    for i, cell in enumerate(row.cells):
        if "\x00" in cell:  # no database stores it in text, and no SMS can carry it
            return RowError(row.line, header[i], cell.replace("\x00", "\\0")[:255], "cell contains a NUL byte")
    raw_phone = unescape(row.cells[cmap.phone].strip())
    why = f"not a valid phone number ({InvalidPhone(raw_phone).message})" if raw_phone else "phone is empty"
    return RowError(row.line, cmap.phone_column, raw_phone[:255], why)


def _tags(cell: str) -> tuple[str, ...]:
    return tuple(sorted({t.strip()[:100] for t in TAG_SEPARATORS.split(cell) if t.strip()}))


def convert_chunk(
    args: tuple[list[RawRow], ColumnMap, list[str], str],
) -> list[tuple[int, ContactRow | RowError]]:
    """Converts a chunk of rows to (line, result) pairs; top-level so a process pool can run it."""
    rows, cmap, header, region = args
    return [(row.line, convert(row, cmap, header, region)) for row in rows]
