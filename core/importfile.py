"""Reading import files as streams of rows: CSV in any common encoding and dialect, and .xlsx."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import ImportFailed

SNIFF_BYTES = 64 * 1024
SCAN_CHUNK = 1024 * 1024
csv.field_size_limit(1024 * 1024)  # a 1 MiB cell is malformed input, not a reason to crash


@dataclass(frozen=True)
class RawRow:
    line: int  # 1-based line in the file where the row starts (the header is line 1)
    cells: list[str]
    problem: str | None = None  # set when the row could not be read at all


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it, for progress."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def detect_encoding(path: Path) -> str:
    """utf-8-sig when the whole file decodes as UTF-8 (with or without BOM), else cp1250.

    The scan reads the file once in 1 MiB chunks through an incremental decoder (C speed, constant memory).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(SCAN_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1250"
    return "utf-8-sig"


def sniff_dialect(sample: str) -> type[csv.Dialect]:
    """Excel's CSV rules with the sniffed delimiter. Only the delimiter is sniffed: a guessed quote
    character (the sniffer likes ' when cells were escaped against formulas) would misread the file."""
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    return type("Sniffed", (csv.excel,), {"delimiter": delimiter})


class CsvSource:
    """Rows of a CSV file; `header` is read on open, `rows()` streams the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        if self.size == 0:
            raise ImportFailed("the file is empty")
        self.encoding = detect_encoding(path)
        with open(path, "rb") as handle:
            sample = handle.read(SNIFF_BYTES).decode(self.encoding, errors="ignore")
        sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
        self._raw = CountingReader(open(path, "rb"))  # noqa: SIM115 - closed in close()
        text = io.TextIOWrapper(io.BufferedReader(self._raw, SCAN_CHUNK), encoding=self.encoding, newline="")
        self._reader = csv.reader(text, sniff_dialect(sample))
        header = next(self._reader, None)
        if not header or not any(cell.strip() for cell in header):
            self.close()
            raise ImportFailed("the file is empty (no header row)")
        self.header = [cell.strip() for cell in header]

    @property
    def bytes_read(self) -> int:
        return self._raw.count

    def rows(self) -> Iterator[RawRow]:
        reader = self._reader
        line = reader.line_num + 1
        while True:
            try:
                for cells in reader:  # one try per file, not per row: this loop runs for every row
                    if any(cells):
                        yield RawRow(line, cells)
                    line = reader.line_num + 1
                return
            except csv.Error as exc:  # the reader goes on with the next row after an unreadable one
                yield RawRow(line, [], f"unreadable row: {exc}")
                line = reader.line_num + 1

    def close(self) -> None:
        self._raw.inner.close()


class XlsxSource:
    """Rows of the first sheet of an .xlsx workbook, read in openpyxl's streaming (read-only) mode."""

    encoding = "xlsx"

    def __init__(self, path: Path) -> None:
        import zipfile

        from openpyxl import load_workbook

        self.path = path
        self.size = path.stat().st_size
        if self.size == 0:
            raise ImportFailed("the file is empty")
        try:
            self._book = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFailed(f"not a readable .xlsx workbook: {exc}") from None
        sheet = self._book.worksheets[0]
        self.max_row = sheet.max_row or 0
        self._rows = sheet.iter_rows(values_only=True)
        header = next(self._rows, None)
        if not header or not any(c is not None and str(c).strip() for c in header):
            self.close()
            raise ImportFailed("the workbook's first sheet is empty (no header row)")
        self.header = [_cell_text(c).strip() for c in header]
        self._line = 1

    @property
    def bytes_read(self) -> int:
        # Progress by rows: the workbook is compressed, so bytes tell little.
        return int(self.size * self._line / self.max_row) if self.max_row else 0

    def rows(self) -> Iterator[RawRow]:
        for values in self._rows:
            self._line += 1
            cells = [_cell_text(v) for v in values]
            if any(cells):
                yield RawRow(self._line, cells)

    def close(self) -> None:
        self._book.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers stored as numbers
    return str(value)


def open_source(path: Path, file_format: str) -> CsvSource | XlsxSource:
    if not path.exists():
        raise ImportFailed("the uploaded file is no longer in storage")
    return XlsxSource(path) if file_format == "xlsx" else CsvSource(path)
