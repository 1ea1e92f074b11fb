"""Tests for core/rules.py: blocked words, domains and patterns, the reason a campaign gets, and safe patterns."""

from __future__ import annotations

import time

import pytest

from core import db, rules
from core.errors import Conflict, InvalidInput, NotFound
from tests.factories import make_workspace


def first_match(kind: str, value: str, *texts: str) -> rules.RuleMatch | None:
    return rules.check_content([rules.compile_rule(kind, rules.check_rule(kind, value))], texts)


def matches(kind: str, value: str, text: str) -> bool:
    return first_match(kind, value, text) is not None


# -- words ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["Kasyno online!", "Graj w KASYNO.", "kasyno", "(kasyno)", "Wejdź: kasyno, teraz", "kasyno\n18+"]
)
def test_word_matches_whole_word_in_any_case(text):
    assert matches("word", "kasyno", text)


@pytest.mark.parametrize("text", ["Nasze kasyna", "kasynowy bonus", "superkasyno", "kasyno_vip", "kasyno2"])
def test_word_does_not_match_other_forms_or_inside_words(text):
    assert not matches("word", "kasyno", text)


def test_word_ignores_diacritics_both_ways():
    assert matches("word", "zakłady", "ZAKŁADY bukmacherskie")
    assert matches("word", "zakłady", "Zaklady bukmacherskie")  # sent without Polish letters to stay in GSM-7
    assert matches("word", "zaklady", "Zakłady!")
    assert matches("word", "pożyczka", "POZYCZKA od ręki")
    assert not matches("word", "pożyczka", "pożyczkach")


def test_word_with_combining_accents_matches_the_composed_form():
    assert matches("word", "żółw", "Zo\u0301łw")  # o + combining acute, as some keyboards send it


def test_phrase_matches_across_any_whitespace():
    assert matches("word", "darmowe  pieniądze", "Darmowe\npieniadze czekają")
    assert not matches("word", "darmowe pieniądze", "darmowe, pieniądze")


def test_word_made_of_symbols_matches_whole():
    assert matches("word", "18+", "Tylko 18+ !")
    assert not matches("word", "18+", "118+")


def test_reason_names_the_rule_and_the_text():
    found = first_match("word", "kasyno", "Hello", "Wielkie otwarcie KASYNA i Kasyno!")
    assert found is not None
    assert found.reason == "blocked word 'kasyno' in variant text"
    assert (found.kind, found.value, found.matched) == ("word", "kasyno", "Kasyno")
    assert "Kasyno" in found.snippet


def test_reason_shows_what_matched_when_it_differs():
    found = first_match("word", "zakłady", "Najlepsze zaklady")
    assert found is not None and found.reason == "blocked word 'zakłady' in variant text: 'zaklady'"


def test_labelled_texts_and_snippet_context():
    text = "A" * 100 + " kasyno " + "B" * 100
    found = rules.check_content([rules.compile_rule("word", "kasyno")], {"variant B (en) text": text})
    assert found is not None and found.reason == "blocked word 'kasyno' in variant B (en) text"
    assert found.snippet == "…" + "A" * 29 + " kasyno " + "B" * 29 + "…"


# -- domains ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["https://bit.ly/abc", "http://x.bit.ly/a", "bit.ly/abc", "Kliknij BIT.LY/x.", "www.a.b.bit.ly", "(bit.ly)",
     "see bit.ly."],
)
def test_domain_matches_itself_and_subdomains(text):
    assert matches("domain", "bit.ly", text)


@pytest.mark.parametrize("text", ["notbit.ly/abc", "https://bit.ly.example.com/", "bit.lyx", "bit-ly.com", "bit ly"])
def test_domain_does_not_match_other_names(text):
    assert not matches("domain", "bit.ly", text)


def test_domain_reason_shows_the_host_found():
    found = first_match("domain", "bit.ly", "Promo: https://promo.bit.ly/x")
    assert found is not None and found.reason == "blocked domain 'bit.ly' in variant text: 'promo.bit.ly'"


@pytest.mark.parametrize(
    ("written", "stored"),
    [("Bit.ly", "bit.ly"), ("https://bit.ly/abc?x=1", "bit.ly"), ("*.example.com", "example.com"),
     ("example.com:8080", "example.com"), ("żabka.pl", "żabka.pl")],
)
def test_domain_is_stored_as_a_bare_name(written, stored):
    assert rules.check_rule("domain", written) == stored


def test_international_domain_matches_in_both_forms():
    assert matches("domain", "żabka.pl", "https://xn--abka-99a.pl/promo")
    assert matches("domain", "xn--abka-99a.pl", "https://żabka.pl/promo")


@pytest.mark.parametrize("bad", ["localhost", "bit ly", "a_b.com", "http://", "..."])
def test_bad_domain_is_refused(bad):
    with pytest.raises(InvalidInput) as err:
        rules.check_rule("domain", bad)
    assert err.value.field == "value"


# -- patterns ---------------------------------------------------------------------------------------------


def test_pattern_matches_case_insensitively():
    assert matches("pattern", r"kasyn\w*", "Wielkie KASYNA")
    assert matches("pattern", r"\d{2,}\s?%\s+zniżki", "aż 50 % ZNIŻKI")
    assert not matches("pattern", r"\d{2,}\s?%\s+zniżki", "5% zniżki")
    found = first_match("pattern", r"kasyn\w*", "Wielkie KASYNA")
    assert found is not None and found.reason == "blocked pattern 'kasyn\\w*' in variant text: 'KASYNA'"


def test_pattern_finds_a_match_far_into_a_long_text():
    assert matches("pattern", r"kasyn\w*", "x " * 3000 + "kasyno")
    assert matches("pattern", r"kasyn\w*", "y" * (rules.WINDOW_CHARS - 3) + " kasyno")  # across a window edge


@pytest.mark.parametrize("bad", ["(", "[a-", "a{2,1}", "(?P<x>a)(?P<x>b)"])
def test_invalid_regex_is_refused_with_the_reason(bad):
    with pytest.raises(InvalidInput, match="not a valid regular expression") as err:
        rules.check_rule("pattern", bad)
    assert err.value.field == "value"


@pytest.mark.parametrize("bad", [r"(a+)+b", r"(a|aa)+$", r"(\w+\s?)+!", r"(x*)*y", r"((ab)*c?)+d"])
def test_nested_repetition_is_refused(bad):
    with pytest.raises(InvalidInput, match="nested repetition"):
        rules.check_rule("pattern", bad)


@pytest.mark.parametrize("bad", [r".*.*x", r"\w+\w+", r"\d+\w*%", r"zł.*\d+%", r"(.*)(.*)x", r"[a-z]+\s*[a-z]+!"])
def test_neighbouring_repeats_over_the_same_characters_are_refused(bad):
    with pytest.raises(InvalidInput, match="neighbouring repeats"):
        rules.check_rule("pattern", bad)


@pytest.mark.parametrize(
    "good",
    [r"kasyn\w*", r"\d+\s*zł", r"(foo|bar)+", r"\d{2,}\s?%", r"(\w+\s)++x", r"zł.{0,100}\d+%", r"(\d{3}[ -]?){3}",
     r"\d+\s+\d+", r"wygra(j|łeś|łaś)", r"https?://\S+", r"(?i:darmo)\w*"],
)
def test_ordinary_patterns_are_accepted(good):
    assert rules.check_rule("pattern", good) == good


@pytest.mark.parametrize("bad", ["x?", "^", "(?!x)", "a*"])
def test_pattern_matching_empty_text_is_refused(bad):
    with pytest.raises(InvalidInput, match="every message"):
        rules.check_rule("pattern", bad)


def test_accepted_patterns_stay_fast_on_hostile_texts():
    hostile = ["1" * 5000, "a" * 5000, "a " * 2500, "zł" + "1" * 4998]
    compiled = [rules.compile_rule("pattern", p) for p in (r"\d+\s*zł.{0,100}\d+%", r"\w+x", r"[^x]*x")]
    started = time.perf_counter()
    assert rules.check_content(compiled, hostile) is None
    assert time.perf_counter() - started < 10  # about 1 s here; without windows, minutes


# -- validation and storage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [("color", "red", "kind"), ("word", "  ", "value"), ("word", "!!!", "value"), ("word", "x" * 501, "value")],
)
def test_bad_rule_names_the_field(kind, value, field):
    with pytest.raises(InvalidInput) as err:
        rules.check_rule(kind, value)
    assert err.value.field == field


def test_save_list_delete_per_workspace(rt):
    ws, other = make_workspace(rt), make_workspace(rt, "Other")
    with db.transaction(rt.sessions) as session:
        word = rules.save_rule(session, ws.id, "word", "  Kasyno  ")
        rules.save_rule(session, ws.id, "domain", "https://bit.ly/x")
        rules.save_rule(session, other.id, "word", "kasyno")
        assert word.value == "Kasyno"
        with pytest.raises(Conflict):
            rules.save_rule(session, ws.id, "domain", "bit.ly")
    with db.transaction(rt.sessions) as session:
        stored = rules.list_rules(session, ws.id)
        assert [(r.kind, r.value) for r in stored] == [("word", "Kasyno"), ("domain", "bit.ly")]
        found = rules.check_content(stored, ["Promocja w kasyno!", "bit.ly/a"])
        assert found is not None and found.rule_id == word.id
        with pytest.raises(NotFound):
            rules.delete_rule(session, other.id, word.id)
        rules.delete_rule(session, ws.id, word.id)
    with rt.sessions() as session:
        assert [r.kind for r in rules.list_rules(session, ws.id)] == ["domain"]
        assert rules.check_content(rules.list_rules(session, ws.id), iter(["kasyno"])) is None


def test_no_rules_means_no_match():
    assert rules.check_content([], ["kasyno bit.ly"]) is None
