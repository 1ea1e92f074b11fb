"""Column mappings for imports, and turning one raw row into a ContactRow or a row error."""

from __future__ import annotations

import marshal
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from core import phones
from core.errors import ImportFailed, InvalidInput, InvalidPhone
from core.importfile import RawRow

if TYPE_CHECKING:
    from core.contacts import ContactRow

PHONE_HEADERS = ("phone", "mobile", "msisdn", "telefon", "tel", "phone_number", "mobile_phone", "mobilephone", "gsm")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
TRUE = frozenset({"1", "true", "yes", "y", "tak", "t", "opted_in", "in", "x"})
FALSE = frozenset({"0", "false", "no", "n", "nie", "f", "opted_out", "out"})
FORMULA_START = ("=", "+", "-", "@")
TAG_SEPARATORS = re.compile(r"[,;|]")
FRAME = struct.Struct("!I")  # length prefix of one marshal frame on a converter process's pipes


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


# What `convert_cells` makes of one row: the fields of a ContactRow, or the column, value and reason of a
# RowError. Plain tuples, because converter processes send them back (marshal: ~2 µs a row, pickled
# dataclasses cost ~10).
Converted = tuple[str, dict[str, str], dict[str, bool], tuple[str, ...], dict[str, str]]
Rejected = tuple[str | None, str | None, str]


def convert(row: RawRow, cmap: ColumnMap, header: Sequence[str], region: str) -> ContactRow | RowError:
    """One raw row → a ContactRow, or the reason it cannot be imported (the row is then skipped whole)."""
    return convert_chunk(([row], cmap, list(header), region))[0][1]


def convert_chunk(
    args: tuple[list[RawRow], ColumnMap, list[str], str],
) -> list[tuple[int, ContactRow | RowError]]:
    """Converts a chunk of rows to (line, result) pairs."""
    rows, cmap, header, region = args
    return finish_chunk(rows, convert_cells(cells_of(rows), cmap, header, region))


def cells_of(rows: Sequence[RawRow]) -> list[list[str] | None]:
    """What `convert_cells` needs of each row: its cells, or None for a row that could not be read."""
    return [None if row.problem else row.cells for row in rows]


def finish_chunk(
    rows: Sequence[RawRow], converted: Sequence[Converted | Rejected | None]
) -> list[tuple[int, ContactRow | RowError]]:
    """Pairs each row's line with the ContactRow or RowError that `convert_cells` described."""
    from core.contacts import ContactRow  # here, so converter processes need not load the ORM

    out: list[tuple[int, ContactRow | RowError]] = []
    for row, item in zip(rows, converted, strict=True):
        if item is None:
            out.append((row.line, RowError(row.line, None, None, row.problem or "unreadable row")))
        elif len(item) == 3:
            out.append((row.line, RowError(row.line, *item)))  # type: ignore[arg-type]
        else:
            out.append((row.line, ContactRow(*item)))  # type: ignore[arg-type]
    return out


def convert_cells(
    rows: Sequence[list[str] | None], cmap: ColumnMap, header: Sequence[str], region: str
) -> list[Converted | Rejected | None]:
    """The work of `convert` for many rows, in one loop with the mapping in locals: it runs for every row
    of every import. A row's first problem rejects it: field count, NUL byte, phone, then consent."""
    attributes_at, consents_at = tuple(cmap.attributes.items()), tuple(cmap.consents.items())
    externals_at, tags_at, width, phone_at = tuple(cmap.external_ids.items()), cmap.tags, cmap.width, cmap.phone
    out: list[Converted | Rejected | None] = []
    for cells in rows:
        if cells is None:
            out.append(None)
            continue
        if len(cells) != width:
            out.append((None, None, f"row has {len(cells)} fields, the header has {width}"))
            continue
        if "\x00" in "".join(cells):
            out.append(_nul_error(cells, header))
            continue
        raw_phone = unescape(cells[phone_at].strip())
        try:
            phone = phones.normalize(raw_phone, region)
        except InvalidPhone as exc:
            why = f"not a valid phone number ({exc.message})" if raw_phone else "phone is empty"
            out.append((cmap.phone_column, raw_phone[:255], why))
            continue
        attributes: dict[str, str] = {}
        for name, i in attributes_at:
            if value := cells[i].strip():
                attributes[name] = unescape(value) if value[0] == "'" else value
        consents = _consents(cells, consents_at, header) if consents_at else {}
        if isinstance(consents, tuple):
            out.append(consents)
            continue
        tags = _tags(cells[tags_at]) if tags_at is not None else ()
        externals = {src: value for src, i in externals_at if (value := cells[i].strip())} if externals_at else {}
        out.append((phone, attributes, consents, tags, externals))
    return out


def _nul_error(cells: list[str], header: Sequence[str]) -> Rejected:
    i = next(i for i, cell in enumerate(cells) if "\x00" in cell)  # no database stores it in text, no SMS carries it
    return header[i], cells[i].replace("\x00", "\\0")[:255], "cell contains a NUL byte"


def _consents(
    cells: list[str], consents_at: Sequence[tuple[str, int]], header: Sequence[str]
) -> dict[str, bool] | Rejected:
    consents: dict[str, bool] = {}
    for category, i in consents_at:
        if not (value := cells[i].strip().lower()):
            continue
        if value not in TRUE and value not in FALSE:
            return header[i], cells[i][:255], "consent must be yes/no, true/false or 1/0"
        consents[category] = value in TRUE
    return consents


def _tags(cell: str) -> tuple[str, ...]:
    return tuple(sorted({t.strip()[:100] for t in TAG_SEPARATORS.split(cell) if t.strip()}))


def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """A converter process's loop (core/imports.py starts them): first the mapping (`mapping_frame`), then
    frames of `cells_of` rows in and of `convert_cells` results out, until its input ends."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    setup = read_frame(stdin)
    if setup is None:
        return
    fields, header, region = marshal.loads(setup)
    cmap = ColumnMap(*fields)
    while (data := read_frame(stdin)) is not None:
        stdout.write(frame(convert_cells(marshal.loads(data), cmap, header, region)))
        stdout.flush()


def mapping_frame(cmap: ColumnMap, header: Sequence[str], region: str) -> bytes:
    """The first frame a converter process reads."""
    fields = (cmap.phone, cmap.phone_column, cmap.attributes, cmap.consents, cmap.external_ids, cmap.tags, cmap.width)
    return frame((fields, list(header), region))


def frame(value: object) -> bytes:
    """`value` (lists, dicts, tuples, str, bool, None) marshalled, behind its length."""
    data = marshal.dumps(value)
    return FRAME.pack(len(data)) + data


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame's payload, or None at the end of the stream."""
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None
