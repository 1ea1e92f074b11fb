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


def convert(row: RawRow, cmap: ColumnMap, header: Sequence[str], region: str) -> ContactRow | RowError:
    """One raw row → a ContactRow, or the reason it cannot be imported (the row is then skipped whole)."""
    if row.problem:
        return RowError(row.line, None, None, row.problem)
    cells = row.cells
    if len(cells) != cmap.width:
        return RowError(row.line, None, None, f"row has {len(cells)} fields, the header has {cmap.width}")
    for i, cell in enumerate(cells):
        if "\x00" in cell:  # no database stores it in text, and no SMS can carry it
            return RowError(row.line, header[i], cell.replace("\x00", "\\0")[:255], "cell contains a NUL byte")
    raw_phone = unescape(cells[cmap.phone].strip())
    try:
        phone = phones.normalize(raw_phone, region)
    except InvalidPhone as exc:
        why = "phone is empty" if not raw_phone else f"not a valid phone number ({exc.message})"
        return RowError(row.line, cmap.phone_column, raw_phone[:255], why)
    attributes = {name: unescape(cells[i].strip()) for name, i in cmap.attributes.items() if cells[i].strip()}
    consents: dict[str, bool] = {}
    for category, i in cmap.consents.items():
        value = cells[i].strip().lower()
        if not value:
            continue
        if value not in TRUE and value not in FALSE:
            return RowError(row.line, header[i], cells[i][:255], "consent must be yes/no, true/false or 1/0")
        consents[category] = value in TRUE
    tags: tuple[str, ...] = ()
    if cmap.tags is not None:
        tags = tuple(sorted({t.strip()[:100] for t in re.split(r"[,;|]", cells[cmap.tags]) if t.strip()}))
    externals = {src: cells[i].strip() for src, i in cmap.external_ids.items() if cells[i].strip()}
    return ContactRow(phone, attributes, consents, tags, externals)


def convert_chunk(
    args: tuple[list[RawRow], ColumnMap, list[str], str],
) -> list[tuple[int, ContactRow | RowError]]:
    """Converts a chunk of rows to (line, result) pairs; top-level so a process pool can run it."""
    rows, cmap, header, region = args
    return [(row.line, convert(row, cmap, header, region)) for row in rows]
