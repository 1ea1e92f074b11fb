"""Tests for core.encoding: GSM-7/UCS-2 detection, part packing and GSM-7 suggestions."""

from __future__ import annotations

import json
import random

import pytest

from core.encoding import GSM_BASIC_TABLE, SmsAnalysis, analyze, split_parts, suggest_gsm

EXTENSION = "\x0c^{}\\[~]|€"


def septets(text: str) -> int:
    """Count GSM-7 septets independently of the module under test."""
    return sum(2 if char in EXTENSION else 1 for char in text)


def utf16_units(text: str) -> int:
    """Count UTF-16 code units independently of the module under test."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --- boundaries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)])
def test_gsm_part_count_at_160_and_153_boundaries(length: int, parts: int) -> None:
    result = analyze("a" * length)
    assert (result.encoding, result.units, result.parts) == ("GSM-7", length, parts)


@pytest.mark.parametrize(("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_part_count_at_70_and_67_boundaries(length: int, parts: int) -> None:
    result = analyze("ż" * length)
    assert (result.encoding, result.units, result.parts) == ("UCS-2", length, parts)


@pytest.mark.parametrize(
    ("text", "per_part", "remaining"),
    [
        ("a" * 10, 160, 150),
        ("a" * 160, 160, 0),
        ("a" * 161, 153, 145),  # 2 x 153 - 161
        ("ż" * 10, 70, 60),
        ("ż" * 71, 67, 63),  # 2 x 67 - 71
        ("€" * 3, 160, 154),
    ],
)
def test_per_part_and_remaining_follow_single_or_concatenated_capacity(
    text: str, per_part: int, remaining: int
) -> None:
    result = analyze(text)
    assert (result.per_part, result.remaining) == (per_part, remaining)


def test_empty_text_is_one_gsm_part_with_160_remaining() -> None:
    # smsutil calls the empty text UCS-2 (its regex needs one char); nothing in it needs UCS-2.
    assert analyze("") == SmsAnalysis("GSM-7", 0, 1, 160, 160)
    assert split_parts("") == [""]


# --- extension table and escape pairs ------------------------------------------------------------------


def test_extension_chars_count_two_septets_so_80_euros_fill_one_part() -> None:
    result = analyze("€" * 80)
    assert (result.encoding, result.units, result.parts, result.remaining) == ("GSM-7", 160, 1, 0)


def test_81_euros_need_two_parts_without_splitting_an_escape_pair() -> None:
    result = analyze("€" * 81)
    assert (result.units, result.parts) == (162, 2)
    # 76 euros = 152 septets; the 77th would put its escape in septet 153 and its code in the next part
    assert split_parts("€" * 81) == ["€" * 76, "€" * 5]


@pytest.mark.parametrize("char", list(EXTENSION))
def test_every_extension_char_costs_two_septets(char: str) -> None:
    assert analyze("a" + char).units == 3


def test_escape_pair_at_septet_153_moves_whole_to_next_part() -> None:
    text = "a" * 152 + "€" + "a" * 152  # 306 septets: ceil division says 2 parts
    result = analyze(text)
    assert (result.units, result.parts, result.remaining) == (306, 3, 152)
    assert split_parts(text) == ["a" * 152, "€" + "a" * 151, "a"]


def test_escape_pair_starting_a_part_needs_no_move() -> None:
    text = "a" * 153 + "€" + "a" * 151  # the same 306 septets, but the pair starts part 2
    result = analyze(text)
    assert (result.parts, result.remaining) == (2, 0)
    assert split_parts(text) == ["a" * 153, "€" + "a" * 151]


def test_escape_pair_right_after_a_move_still_packs_correctly() -> None:
    text = "a" * 152 + "€" * 77  # first € moves; then 76 more fill 152 septets of part 2; the last moves
    assert split_parts(text) == ["a" * 152, "€" * 76, "€"]
    assert analyze(text).parts == 3


def test_short_text_with_escape_pair_at_152_stays_one_part() -> None:
    # 160 septets fit one unsplit part, so the 153 boundary does not apply
    assert analyze("a" * 152 + "€" + "a" * 6).parts == 1


# --- surrogate pairs -----------------------------------------------------------------------------------


def test_emoji_counts_two_utf16_units() -> None:
    result = analyze("ok \U0001f600")
    assert (result.encoding, result.units) == ("UCS-2", 5)


def test_emoji_at_ucs2_unit_67_moves_whole_to_next_part() -> None:
    text = "ż" * 66 + "\U0001f600" + "ż" * 66  # 134 units: ceil division says 2 parts
    result = analyze(text)
    assert (result.units, result.parts, result.remaining) == (134, 3, 66)
    assert split_parts(text) == ["ż" * 66, "\U0001f600" + "ż" * 65, "ż"]


def test_emoji_starting_a_ucs2_part_needs_no_move() -> None:
    text = "ż" * 67 + "\U0001f600" + "ż" * 65
    assert analyze(text).parts == 2
    assert split_parts(text) == ["ż" * 67, "\U0001f600" + "ż" * 65]


def test_emoji_makes_otherwise_gsm_text_ucs2() -> None:
    result = analyze("a" * 66 + "\U0001f600" + "a" * 5)
    assert (result.encoding, result.units, result.parts) == ("UCS-2", 73, 2)


# --- alphabet ------------------------------------------------------------------------------------------


def test_whole_basic_table_and_extension_table_are_gsm() -> None:
    text = GSM_BASIC_TABLE.replace("\x1b", "") + EXTENSION
    result = analyze(text)
    assert len(GSM_BASIC_TABLE) == 128
    assert (result.encoding, result.units) == ("GSM-7", 127 + 2 * len(EXTENSION))


def test_capital_c_cedilla_is_gsm_but_small_c_cedilla_is_not() -> None:
    assert analyze("Ç").encoding == "GSM-7"
    assert analyze("ç").encoding == "UCS-2"


@pytest.mark.parametrize("char", ["`", "\t", "\x7f", "\u00a0", "â", "α", "\u2019"])
def test_chars_outside_the_gsm_alphabet_force_ucs2(char: str) -> None:
    assert analyze("Sale " + char).encoding == "UCS-2"


def test_literal_escape_char_is_ucs2_because_0x1b_is_not_a_character() -> None:
    # smsutil counts "\x1b" as a 1-septet GSM char; sent raw it would turn the next char into an escape pair
    result = analyze("Sale\x1bnow")
    assert (result.encoding, result.unicode_chars) == ("UCS-2", ((4, "\x1b"),))


def test_polish_l_in_a_name_turns_the_message_ucs2() -> None:
    text = "Hi Michał, your order has shipped."
    assert analyze(text.replace("ł", "l")).encoding == "GSM-7"
    result = analyze(text)
    assert (result.encoding, result.unicode_chars) == ("UCS-2", ((8, "ł"),))


def test_unicode_chars_are_listed_with_str_positions() -> None:
    result = analyze("Zażółć \U0001f600!")
    assert result.unicode_chars == ((2, "ż"), (3, "ó"), (4, "ł"), (5, "ć"), (7, "\U0001f600"))
    assert result.units == 10


def test_extended_chars_are_listed_with_str_positions() -> None:
    result = analyze("Only €5 [VIP]")
    assert result.extended_chars == ((5, "€"), (8, "["), (12, "]"))
    assert (result.units, result.unicode_chars) == (16, ())


def test_extension_chars_cost_one_unit_and_are_not_listed_in_ucs2() -> None:
    result = analyze("€5 ż")
    assert (result.encoding, result.units, result.extended_chars) == ("UCS-2", 4, ())


# --- odd input -----------------------------------------------------------------------------------------


def test_nul_is_ucs2_not_the_gsm_at_sign() -> None:
    result = analyze("\x00")
    assert (result.encoding, result.units, result.unicode_chars) == ("UCS-2", 1, ((0, "\x00"),))
    assert analyze("@").encoding == "GSM-7"


def test_lone_surrogates_count_one_unit_each_without_crashing() -> None:
    result = analyze("\ud800" * 71)
    assert (result.encoding, result.units, result.parts) == ("UCS-2", 71, 2)
    assert [len(part) for part in split_parts("\ud800" * 71)] == [67, 4]
    assert json.loads(json.dumps(result.to_dict()))["units"] == 71


def test_to_dict_is_json_ready() -> None:
    data = json.loads(json.dumps(analyze("€ ok").to_dict()))
    assert data == {
        "encoding": "GSM-7",
        "units": 5,
        "parts": 1,
        "per_part": 160,
        "remaining": 155,
        "unicode_chars": [],
        "extended_chars": [{"position": 0, "char": "€"}],
    }


# --- packing agrees with an independent per-part check -------------------------------------------------


def random_text(rng: random.Random) -> str:
    """Return a text mixing plain, extension, non-GSM and astral chars, dense enough to hit boundaries."""
    pools = ["a", "a", "a", "€", "[", "ż", "\U0001f600"]
    allowed = rng.sample(pools, rng.randint(1, len(pools)))
    return "".join(rng.choice(allowed) for _ in range(rng.randint(0, 500)))


def test_split_parts_matches_part_count_and_packs_greedily_on_random_texts() -> None:
    rng = random.Random(23040)
    for _ in range(2000):
        text = random_text(rng)
        result = analyze(text)
        segments = split_parts(text)
        count = utf16_units if result.encoding == "UCS-2" else septets
        assert "".join(segments) == text
        assert len(segments) == result.parts
        assert result.units == count(text)
        assert all(count(segment) <= result.per_part for segment in segments)
        # greedy: the first char of each next part would not have fitted in the part before it
        assert all(
            count(segment + after[0]) > result.per_part
            for segment, after in zip(segments, segments[1:], strict=False)
        )
        assert result.remaining == result.per_part - count(segments[-1])


# --- suggestions ---------------------------------------------------------------------------------------


def test_suggest_gsm_replaces_curly_quotes_and_saves_parts() -> None:
    text = "a" * 150 + "\u201cSale\u201d"  # 156 chars: UCS-2 needs 3 parts, GSM-7 fits one
    suggestion = suggest_gsm(text)
    assert suggestion is not None
    assert suggestion.possible
    assert [(r.position, r.original, r.replacement) for r in suggestion.replacements] == [
        (150, "\u201c", '"'),
        (155, "\u201d", '"'),
    ]
    assert suggestion.text == "a" * 150 + '"Sale"'
    assert (suggestion.analysis.encoding, suggestion.analysis.parts) == ("GSM-7", 1)
    assert suggestion.parts_saved == 2
    assert suggestion.transliterations == ()


def test_suggest_gsm_returns_none_for_text_already_gsm() -> None:
    assert suggest_gsm("Get 20% off at Café Crème, only €5 [VIP]") is None


def test_suggest_gsm_lists_polish_letters_as_transliterations_apart() -> None:
    suggestion = suggest_gsm("Hi Michał \u2013 thanks\u2026")
    assert suggestion is not None and suggestion.possible
    assert [(r.position, r.replacement) for r in suggestion.replacements] == [(10, "-"), (18, "...")]
    assert [(r.position, r.original, r.replacement) for r in suggestion.transliterations] == [(8, "ł", "l")]
    assert suggestion.text == "Hi Michal - thanks..."


def test_suggest_gsm_removes_invisible_chars_and_normalises_spaces() -> None:
    suggestion = suggest_gsm("50\u00a0EUR\u200b off")
    assert suggestion is not None and suggestion.possible
    assert suggestion.text == "50 EUR off"


def test_suggest_gsm_composes_decomposed_accent_into_gsm_letter() -> None:
    suggestion = suggest_gsm("Cafe\u0301")
    assert suggestion is not None and suggestion.possible
    assert [(r.position, r.original, r.replacement) for r in suggestion.replacements] == [(3, "e\u0301", "é")]
    assert suggestion.text == "Café"


def test_suggest_gsm_says_impossible_when_an_emoji_remains() -> None:
    suggestion = suggest_gsm("\u201cSale\u201d \U0001f389")
    assert suggestion is not None
    assert not suggestion.possible
    assert suggestion.blockers == ((7, "\U0001f389"),)
    assert suggestion.analysis.encoding == "UCS-2"


def test_suggestion_to_dict_is_json_ready() -> None:
    suggestion = suggest_gsm("ł")
    assert suggestion is not None
    data = json.loads(json.dumps(suggestion.to_dict()))
    assert data["transliterations"] == [{"position": 0, "original": "ł", "replacement": "l"}]
    assert (data["possible"], data["text"], data["analysis"]["encoding"]) == (True, "l", "GSM-7")
