"""GSM-7 / UCS-2 detection, part counting and GSM-7 suggestions per 3GPP TS 23.038 and TS 23.040."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

# TS 23.038 default alphabet in code order, 0x00..0x7F. 0x1B is the escape to the extension table, not a
# character: a literal "\x1b" in the text cannot be sent as itself, so it is left out of GSM_CHARS.
GSM_BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table (escape + code), each costing 2 septets: 0x0A 0x14 0x28 0x29 0x2F 0x3C 0x3D 0x3E 0x40 0x65.
GSM_EXTENDED: Final = "\x0c^{}\\[~]|€"
GSM_CHARS: Final = frozenset(GSM_BASIC_TABLE.replace("\x1b", "")) | frozenset(GSM_EXTENDED)

# Capacity in units (septets or UTF-16 code units). Concatenated parts lose 6 bytes to the UDH (TS 23.040):
# 140 - 6 = 134 bytes = 153 septets or 67 UTF-16 units.
GSM7_SINGLE: Final = 160
GSM7_MULTI: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI: Final = 67

# Detection runs at C speed. Latin-1 text (most marketing SMS, £ and é included) is settled by encoding it
# and letting bytes.translate delete the plain 1-septet chars: if nothing is left, it is plain GSM-7. Other
# text takes one regex scan for every char that is not a plain 1-septet char; only matches get per-char work.
_LATIN1_BASIC: Final = bytes(code for code in range(256) if chr(code) in GSM_CHARS - set(GSM_EXTENDED))
_NOT_BASIC: Final = re.compile("[^" + re.escape("".join(sorted(GSM_CHARS - set(GSM_EXTENDED)))) + "]")
_EXTENDED_SET: Final = frozenset(GSM_EXTENDED)
_ASTRAL_MIN: Final = "\U00010000"  # chars from here on are a UTF-16 surrogate pair: 2 units, unsplittable

Position = tuple[int, str]


@dataclass(frozen=True, slots=True)
class SmsAnalysis:
    """How a text will be sent.

    Attributes:
        encoding: "GSM-7" or "UCS-2".
        units: septets for GSM-7 (extension chars count 2), UTF-16 code units for UCS-2.
        parts: number of SMS parts; the empty text is 1 part.
        per_part: capacity of each part in units: 160/153 (GSM-7) or 70/67 (UCS-2).
        remaining: units still free in the last part.
        unicode_chars: (str index, char) of every char outside the GSM-7 alphabet.
        extended_chars: (str index, char) of every extension-table char costing 2 septets; empty for UCS-2,
            where they cost 1 unit like any other char.
    """

    encoding: Encoding
    units: int
    parts: int
    per_part: int
    remaining: int
    unicode_chars: tuple[Position, ...] = ()
    extended_chars: tuple[Position, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; positions become {"position": int, "char": str} objects."""
        return {
            "encoding": self.encoding,
            "units": self.units,
            "parts": self.parts,
            "per_part": self.per_part,
            "remaining": self.remaining,
            "unicode_chars": [{"position": p, "char": c} for p, c in self.unicode_chars],
            "extended_chars": [{"position": p, "char": c} for p, c in self.extended_chars],
        }


def analyze(text: str) -> SmsAnalysis:
    """Pick the encoding of `text` and count its units and parts.

    Never raises: NUL, lone surrogates and other odd chars are simply UCS-2 (a lone surrogate is 1 unit).
    """
    latin1 = text.encode("latin-1", "ignore")  # drops what latin-1 lacks; the length check catches that
    if len(latin1) == len(text) and not latin1.translate(None, _LATIN1_BASIC):
        return _plain_gsm(len(text))
    specials = [(m.start(), m.group()) for m in _NOT_BASIC.finditer(text)]
    if not specials:
        return _plain_gsm(len(text))
    unicode_chars = tuple(s for s in specials if s[1] not in _EXTENDED_SET)
    if not unicode_chars:
        extended = tuple(specials)
        return _packed(GSM7, len(text) + len(extended), (), extended, [p for p, _ in extended])
    wide = [p for p, c in unicode_chars if c >= _ASTRAL_MIN]
    return _packed(UCS2, len(text) + len(wide), unicode_chars, (), wide)


def _plain_gsm(units: int) -> SmsAnalysis:
    """Return the analysis of a GSM-7 text without extension chars; it depends on the length alone."""
    if units < len(_PLAIN_GSM):
        return _PLAIN_GSM[units]
    return _packed(GSM7, units, (), (), ())


def _packed(
    encoding: Encoding,
    units: int,
    unicode_chars: tuple[Position, ...],
    extended: tuple[Position, ...],
    wide: Sequence[int],
) -> SmsAnalysis:
    """Build the analysis, packing parts when 2-unit chars (`wide`, ascending str indexes) exist."""
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == GSM7 else (UCS2_SINGLE, UCS2_MULTI)
    if units <= single:
        return SmsAnalysis(encoding, units, 1, single, single - units, unicode_chars, extended)
    padded = units + (_padding(wide, multi) if wide else 0)
    parts = -(-padded // multi)
    return SmsAnalysis(encoding, units, parts, multi, parts * multi - padded, unicode_chars, extended)


def _padding(wide: Sequence[int], per_part: int) -> int:
    """Count units left empty at part ends because a 2-unit char may not straddle a boundary.

    Every char takes 1 str index; the j-th wide char at index i therefore starts at unit i + j + padding so
    far. Starting on the last unit of a part, it moves whole to the next part, leaving that unit empty.
    """
    padding = 0
    last = per_part - 1
    for j, index in enumerate(wide):
        if (index + j + padding) % per_part == last:
            padding += 1
    return padding


# Analyses are immutable, so the plain GSM-7 ones (up to 10 parts) are built once and shared.
_PLAIN_GSM: Final = tuple(_packed(GSM7, units, (), (), ()) for units in range(GSM7_MULTI * 10 + 1))


def split_parts(text: str) -> list[str]:
    """Cut `text` into the segment texts that will be sent, never splitting an escape or surrogate pair.

    Returns:
        One string per part; `[text]` when it fits one part (also `[""]` for the empty text).
    """
    analysis = analyze(text)
    if analysis.parts == 1:
        return [text]
    gsm = analysis.encoding == GSM7
    segments: list[str] = []
    start = used = 0
    for index, char in enumerate(text):
        width = 2 if (char in _EXTENDED_SET if gsm else char >= _ASTRAL_MIN) else 1
        if used + width > analysis.per_part:
            segments.append(text[start:index])
            start, used = index, 0
        used += width
    segments.append(text[start:])
    return segments


# --- GSM-7 suggestions ---------------------------------------------------------------------------------

# Same meaning, different code point: typographic punctuation and invisible spacing that editors insert.
LOOKALIKES: Final[dict[str, str]] = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4`\u2039\u203a", "'"),  # ‘ ’ ‚ ‛ ′ ´ ` ‹ ›
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),  # “ ” „ ‟ ″ « »
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2022", "-"),  # dashes, minus, bullet •
    "\u2026": "...",  # …
    # tab, no-break space, en..hair spaces, narrow no-break, medium math, ideographic space
    **dict.fromkeys("\t\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000", " "),
    # zero width space / non-joiner / joiner, word joiner, BOM, soft hyphen: invisible, so removed
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
}

# Letters without a decomposition; the rest come from stripping combining marks (NFD) in _transliterations.
_UNDECOMPOSABLE: Final = {**dict(zip("łŁđĐħĦıŧŦ", "lLdDhHitT", strict=True)), "œ": "oe", "Œ": "OE"}


def _transliterations() -> dict[str, str]:
    """Map each Latin letter outside GSM-7 (á, ç, ś, ż, ő, ...) to its GSM-7 letters without diacritics."""
    table = dict(_UNDECOMPOSABLE)
    for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if char not in GSM_CHARS and base and base != char and all(c in GSM_CHARS for c in base):
            table.setdefault(char, base)
    return table


TRANSLITERATIONS: Final[dict[str, str]] = _transliterations()


@dataclass(frozen=True, slots=True)
class Replacement:
    """One offered change; `replacement` is "" when an invisible char or a lone combining mark is removed."""

    position: int  # str index in the original text
    original: str  # one char, or a letter plus a combining mark that compose to one GSM-7 letter
    replacement: str


@dataclass(frozen=True, slots=True)
class GsmSuggestion:
    """Changes that would let a UCS-2 text go out as GSM-7; offered to the user, never applied silently.

    Invariants: `text` is the original with every replacement and transliteration applied, `analysis` is
    `analyze(text)`, and `possible` is true exactly when `blockers` is empty and `analysis` is GSM-7. When
    `possible` is false the UI should not offer the switch: `parts_saved` may then be 0 or negative.

    Attributes:
        possible: whether applying everything listed makes the text GSM-7.
        replacements: look-alikes that keep the meaning exactly (curly quotes, dashes, odd spaces).
        transliterations: optional letter changes that drop diacritics (ł -> l, á -> a), listed apart so
            the user can decide.
        blockers: (str index, char) of chars with no GSM-7 look-alike (emoji, Cyrillic, CJK).
        text: the suggested text.
        analysis: the analysis of the suggested text.
        parts_saved: parts of the original minus parts of the suggested text.
    """

    possible: bool
    replacements: tuple[Replacement, ...]
    transliterations: tuple[Replacement, ...]
    blockers: tuple[Position, ...]
    text: str
    analysis: SmsAnalysis
    parts_saved: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""

        def changes(items: tuple[Replacement, ...]) -> list[dict[str, Any]]:
            return [
                {"position": r.position, "original": r.original, "replacement": r.replacement} for r in items
            ]

        return {
            "possible": self.possible,
            "replacements": changes(self.replacements),
            "transliterations": changes(self.transliterations),
            "blockers": [{"position": p, "char": c} for p, c in self.blockers],
            "text": self.text,
            "analysis": self.analysis.to_dict(),
            "parts_saved": self.parts_saved,
        }


def suggest_gsm(text: str) -> GsmSuggestion | None:
    """Offer look-alike replacements that would turn a UCS-2 text into GSM-7.

    Returns:
        None when the text is already GSM-7 (nothing to suggest). Otherwise a GsmSuggestion; check its
        `possible` flag: false means some char (see `blockers`) has no GSM-7 look-alike.
    """
    current = analyze(text)
    if current.encoding == GSM7:
        return None
    lookalikes: list[Replacement] = []
    transliterations: list[Replacement] = []
    blockers: list[Position] = []
    taken: set[int] = set()  # non-GSM positions already handled: a combining mark never composes with them
    for position, char in current.unicode_chars:
        taken.add(position)
        if char in LOOKALIKES:
            lookalikes.append(Replacement(position, char, LOOKALIKES[char]))
        elif char in TRANSLITERATIONS:
            transliterations.append(Replacement(position, char, TRANSLITERATIONS[char]))
        elif unicodedata.combining(char):
            change, exact = _combining_mark(text, position, taken)
            (lookalikes if exact else transliterations).append(change)
        else:
            blockers.append((position, char))
    suggested = _apply(text, sorted(lookalikes + transliterations, key=lambda r: r.position))
    analysis = analyze(suggested)
    return GsmSuggestion(
        possible=analysis.encoding == GSM7,
        replacements=tuple(lookalikes),
        transliterations=tuple(transliterations),
        blockers=tuple(blockers),
        text=suggested,
        analysis=analysis,
        parts_saved=current.parts - analysis.parts,
    )


def _combining_mark(text: str, position: int, taken: set[int]) -> tuple[Replacement, bool]:
    """Compose a decomposed letter ("e" + U+0301 -> "é") when that gives a GSM-7 letter, else drop the mark.

    Returns:
        The replacement and whether it keeps the meaning exactly (composition) rather than dropping an accent.
    """
    before = position - 1
    if before >= 0 and before not in taken:
        composed = unicodedata.normalize("NFC", text[before : position + 1])
        if len(composed) == 1 and composed in GSM_CHARS:
            return Replacement(before, text[before : position + 1], composed), True
    return Replacement(position, text[position], ""), False


def _apply(text: str, changes: Sequence[Replacement]) -> str:
    """Return `text` with non-overlapping `changes` (sorted by position) applied."""
    pieces: list[str] = []
    cursor = 0
    for change in changes:
        pieces.append(text[cursor : change.position])
        pieces.append(change.replacement)
        cursor = change.position + len(change.original)
    pieces.append(text[cursor:])
    return "".join(pieces)
