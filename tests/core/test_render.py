"""Tests for core/render.py: personalisation, defaults, sandbox limits and language variants."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.render import (
    MAX_STRING_LENGTH,
    MissingVariable,
    MissingVariant,
    RenderError,
    TemplateSyntaxError,
    UnsafeTemplate,
    compile_template,
    pick_variant,
)

TYPICAL = "Hi {{ first_name | default('Customer') }}, your {{ city }} store has -20%! {{ optout_url }}"


def render(source: str, variables: Mapping[str, object] | None = None) -> str:
    return compile_template(source).render(variables or {})


# -- variables and defaults -----------------------------------------------------------------------


def test_contact_attributes_and_engine_variables_render() -> None:
    contact = {"first_name": "Anna", "city": "Gdańsk", "optout_url": "https://s.example/o/1"}

    assert render(TYPICAL, contact) == "Hi Anna, your Gdańsk store has -20%! https://s.example/o/1"


def test_default_is_used_when_variable_is_missing() -> None:
    assert render(TYPICAL, {"city": "Łódź", "optout_url": "u"}) == "Hi Customer, your Łódź store has -20%! u"


@pytest.mark.parametrize("empty", ["", None])
def test_default_is_used_when_attribute_is_empty(empty: object) -> None:
    assert render("Hi {{ first_name | default('Customer') }}", {"first_name": empty}) == "Hi Customer"


def test_short_default_alias_d_works_for_empty_attribute() -> None:
    assert render("{{ city | d('your town') }}", {"city": ""}) == "your town"


def test_zero_and_false_are_values_not_missing() -> None:
    template = "{{ points | default('none') }}/{{ vip | default('none') }}"

    assert render(template, {"points": 0, "vip": False}) == "0/False"


def test_missing_variable_without_default_raises_naming_it() -> None:
    with pytest.raises(MissingVariable) as caught:
        render("Hi {{ first_name }}, see you in {{ city }}", {"city": "Poznań"})

    assert caught.value.names == ("first_name",)
    assert "first_name" in str(caught.value)


@pytest.mark.parametrize("empty", ["", None])
def test_empty_attribute_without_default_raises_missing_variable(empty: object) -> None:
    with pytest.raises(MissingVariable) as caught:
        render("Hi {{ first_name }}", {"first_name": empty})

    assert caught.value.names == ("first_name",)


def test_missing_variable_error_lists_every_missing_name_once() -> None:
    with pytest.raises(MissingVariable) as caught:
        render("{{ first_name }} {{ city }} {{ first_name }} {{ last_purchase | default('-') }}", {})

    assert caught.value.names == ("first_name", "city")
    assert str(caught.value) == "missing variables without a default: first_name, city"


def test_missing_variable_in_arithmetic_is_named() -> None:
    with pytest.raises(MissingVariable) as caught:
        render("{{ points + 10 }}", {})

    assert caught.value.names == ("points",)


def test_missing_variable_is_false_in_if_so_optional_parts_work() -> None:
    template = "Hi{% if first_name %} {{ first_name }}{% endif %}!"

    assert render(template, {}) == "Hi!"
    assert render(template, {"first_name": "Ola"}) == "Hi Ola!"


def test_template_lists_its_variables_and_which_have_defaults() -> None:
    template = compile_template(TYPICAL + " {{ city | default('x') }}")

    assert template.variables == frozenset({"first_name", "city", "optout_url"})
    assert template.defaulted == frozenset({"first_name"})


def test_compiled_template_renders_many_contacts_without_leaking_values() -> None:
    template = compile_template("Hi {{ first_name | default('Customer') }}")

    assert template.render({"first_name": "Ewa"}) == "Hi Ewa"
    assert template.render({}) == "Hi Customer"
    assert template.render({"first_name": "Jan"}) == "Hi Jan"


def test_unicode_names_render_intact() -> None:
    contact = {"first_name": "Łukasz", "city": "Kraków"}

    assert render("Cześć {{ first_name }} 🎉 {{ city | upper }}", contact) == "Cześć Łukasz 🎉 KRAKÓW"


# -- syntax errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("Hi {{ first_name\n", 1, 4),
        ("line1\n{{ a | }}", 2, 1),
        ("Hi {{ a }} and {{ b + }}", 1, 16),
        ("x\n{{ a\n  + }}", 3, 3),
    ],
)
def test_syntax_error_has_line_and_column(source: str, line: int, column: int) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(source)

    assert (caught.value.line, caught.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(caught.value)


def test_unknown_filter_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="nosuch"):
        compile_template("{{ name | nosuch }}")


@pytest.mark.parametrize(
    ("source", "line", "column", "what"),
    [("Hi\x00there", 1, 3, "NUL"), ("ok\nHi \ud83d {{ x }}", 2, 4, "surrogate")],
)
def test_nul_byte_and_lone_surrogate_are_rejected_with_position(
    source: str, line: int, column: int, what: str
) -> None:
    with pytest.raises(TemplateSyntaxError, match=what) as caught:
        compile_template(source)

    assert (caught.value.line, caught.value.column) == (line, column)


# -- sandbox --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ first_name['__class__'] }}",
        "{% import 'os' as os %}",
        "{% from 'x' import y %}",
        "{% include 'x' %}",
        "{% extends 'x' %}",
    ],
)
def test_sandbox_escapes_are_refused_when_compiling(source: str) -> None:
    with pytest.raises(UnsafeTemplate):
        compile_template(source)


@pytest.mark.parametrize("source", ["{{ first_name[key] }}", "{{ first_name | attr(key) }}"])
def test_private_attribute_chosen_at_render_time_is_refused(source: str) -> None:
    template = compile_template(source)

    with pytest.raises(UnsafeTemplate, match="__class__"):
        template.render({"first_name": "Anna", "key": "__class__"})


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(3) %}x{% endfor %}",
        "{% set a = 'x' %}{{ a }}",
        "{% macro m() %}x{% endmacro %}",
        "{{ first_name.upper() }}",
        "{{ lipsum(1000) }}",
    ],
)
def test_loops_assignments_macros_and_calls_are_refused(source: str) -> None:
    with pytest.raises(UnsafeTemplate):
        compile_template(source)


def test_printing_a_method_instead_of_calling_a_filter_is_refused() -> None:
    with pytest.raises(UnsafeTemplate, match="upper"):
        render("{{ first_name.upper }}", {"first_name": "Anna"})


def test_big_string_multiplication_is_refused() -> None:
    with pytest.raises(UnsafeTemplate, match="repetition"):
        render("{{ 'a' * 10**9 }}")


def test_small_string_multiplication_still_works() -> None:
    longest = render("{{ 'ab' * half }}", {"half": MAX_STRING_LENGTH // 2})

    assert render("{{ '-' * 3 }}") == "---"
    assert len(longest) == MAX_STRING_LENGTH


@pytest.mark.parametrize(
    ("source", "refusal"),
    [
        ("{{ 2 ** 100000 }}", "bits"),
        ("{{ '%1000000000s' % 'x' }}", "format string"),
        ("{{ '%*s' % (1000000000, 'x') }}", "'\\*' widths"),
        ("{{ '%1000000000s' | format('x') }}", "format string"),
        ("{{ ('a' * 10000) | replace('', 'bbbbbbbbbb') }}", "replace"),
        ("{{ ('a' * 10000) | join('b' * 10000) }}", "join"),
    ],
)
def test_operations_that_would_build_huge_values_are_refused_before_building(
    source: str, refusal: str
) -> None:
    with pytest.raises(UnsafeTemplate, match=refusal):
        render(source)


def test_guarded_filters_still_work_for_normal_text() -> None:
    template = (
        "{{ '%.2f' | format(price) }} {{ '%d%%' % 20 }} {{ name | replace('a', 'e') }} {{ tags | join }}"
    )

    assert render(template, {"price": 9.5, "name": "Anna", "tags": ["a", "b"]}) == "9.50 20% Anne ab"


@pytest.mark.parametrize("source", ["{{ 'x' | center(1000000000) }}", "{{ 'x' | indent(1000000000) }}"])
def test_filters_that_can_blow_up_output_are_not_available(source: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="No filter named"):
        compile_template(source)


def test_runtime_failure_becomes_render_error() -> None:
    with pytest.raises(RenderError, match="division by zero"):
        render("{{ points / 0 }}", {"points": 5})


def test_every_error_shares_the_render_error_base() -> None:
    for error in (TemplateSyntaxError, UnsafeTemplate, MissingVariable, MissingVariant):
        assert issubclass(error, RenderError)


# -- plain text -----------------------------------------------------------------------------------


def test_plain_text_short_circuits_and_returns_the_text() -> None:
    template = compile_template("Sale -20% until Sunday! {curly} 100% } STOP")

    assert template.is_plain
    assert template.variables == frozenset()
    assert template.render({}) == "Sale -20% until Sunday! {curly} 100% } STOP"


def test_comment_makes_a_template_not_plain() -> None:
    template = compile_template("{# internal note #}Hello")

    assert not template.is_plain
    assert template.render({}) == "Hello"


def test_line_breaks_are_normalised_the_same_with_and_without_variables() -> None:
    assert render("a\r\nb\rc\n") == "a\nb\nc\n"
    assert render("a\r\n{{ x }}\rc\n", {"x": "b"}) == "a\nb\nc\n"


# -- language variants ----------------------------------------------------------------------------

VARIANTS = {"pl": "Cześć", "EN": "Hi", "pt-BR": "Olá", "pt": "Olá (PT)"}


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("pl", "Cześć"),
        ("PL", "Cześć"),
        ("en", "Hi"),
        ("pl-PL", "Cześć"),
        ("pl_pl", "Cześć"),
        ("pt-br", "Olá"),
    ],
)
def test_pick_variant_matches_language_ignoring_case_and_region(language: str, expected: str) -> None:
    assert pick_variant(VARIANTS, language, "en") == expected


def test_pick_variant_prefers_exact_region_over_base_language() -> None:
    assert pick_variant(VARIANTS, "pt-BR", "en") == "Olá"
    assert pick_variant(VARIANTS, "pt-PT", "en") == "Olá (PT)"


@pytest.mark.parametrize("language", [None, "", "de", "de-DE"])
def test_pick_variant_uses_fallback_for_missing_or_unknown_language(language: str | None) -> None:
    assert pick_variant(VARIANTS, language, "en") == "Hi"


def test_pick_variant_raises_when_fallback_is_missing_too() -> None:
    with pytest.raises(MissingVariant) as caught:
        pick_variant({"pl": "Cześć"}, "de", "en")

    assert "'de'" in str(caught.value)
    assert "'en'" in str(caught.value)
    assert "pl" in str(caught.value)
