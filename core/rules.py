"""Content policy: a workspace's blocked words, URL domains and regular expressions, checked before sending.

Matching, as users see it:
- `word`: a whole word or phrase, ignoring case and diacritics (SMS senders often drop ą, ł, ó to stay in
  GSM-7), so "kasyno" matches "KASYNO!" and "kasyno," but not "kasyna" or "kasynowy": each inflected form is
  its own rule, or use a pattern such as `kasyn\\w*`. Spaces in a phrase match any run of whitespace.
- `domain`: the domain or any subdomain anywhere in the text, with or without a scheme: "bit.ly" matches
  "https://x.bit.ly/a" and "bit.ly/abc", not "notbit.ly" or "bit.ly.example.com".
- `pattern`: a Python regular expression searched case-insensitively. It is refused on save when it could
  take exponential or polynomial time (nested or neighbouring repeats over the same characters), and texts are
  searched in windows of WINDOW_CHARS, so even a slow pattern's cost is bounded per window, without timeouts.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from re import _constants as sre  # the standard library's own regex parser (Python 3.11+)
from re import _parser as sre_parse

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.models import ContentRule

log = logging.getLogger(__name__)

KINDS = ("word", "domain", "pattern")
MAX_VALUE_CHARS = 500  # the column's length
FLAGS = re.IGNORECASE
WINDOW_CHARS = 1000  # a pattern searches a text this many characters at a time...
WINDOW_OVERLAP = 200  # ...in windows overlapping by this much, so no match up to 200 characters is cut
SNIPPET_CONTEXT = 30  # characters shown on each side of a match
LONG_REPEAT = 100  # a repeat that may run longer than this counts as unbounded
NESTED_REPEAT = 4  # an outer repeat of more than this many turns must not hold a variable-width body

_SPACES = re.compile(r"\s+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_DOMAIN = re.compile(r"(?:[\w-]+\.)+[\w-]+")
_EXTRA_FOLDS = {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ø": "o", "Ø": "O", "ı": "i"}  # no decomposition


class _Fold(dict[int, int]):
    """str.translate table: each character to its base letter (ą → a, Ł → L), one to one so offsets hold."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        base = _EXTRA_FOLDS.get(char)
        if base is None:
            parts = unicodedata.normalize("NFD", char)
            base = parts[0] if len(parts) > 1 and all(unicodedata.combining(c) for c in parts[1:]) else char
        self[code] = ord(base)
        return ord(base)


_FOLD = _Fold()


@dataclass(frozen=True)
class RuleMatch:
    """The first rule a text breaks; `reason` becomes the campaign's Rejected reason."""

    kind: str
    value: str
    matched: str  # the exact text that matched
    snippet: str  # the match with some text around it
    where: str  # which text, e.g. "variant text"
    reason: str
    rule_id: int | None = None


@dataclass(frozen=True)
class CompiledRule:
    kind: str
    value: str
    regex: re.Pattern[str]
    rule_id: int | None = None

    def search(self, text: str, folded: str) -> re.Match[str] | None:
        if self.kind == "word":
            return self.regex.search(folded)
        if self.kind == "domain":
            return self.regex.search(text)
        return next(_windows(self.regex, text), None)


def check_rule(kind: str, value: str) -> str:
    """The normalised value to store; raises InvalidInput naming `kind` or `value`."""
    if kind not in KINDS:
        raise InvalidInput("kind", f"{kind!r} is not one of {', '.join(KINDS)}", kind)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("value", "must not be empty", value)
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidInput("value", f"at most {MAX_VALUE_CHARS} characters", len(value))
    if kind == "word":
        return _check_word(value)
    if kind == "domain":
        return _check_domain(value)
    return _check_pattern(value)


def compile_rule(kind: str, value: str, rule_id: int | None = None) -> CompiledRule:
    if kind == "word":
        words = unicodedata.normalize("NFC", value).translate(_FOLD).split()
        source = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
    elif kind == "domain":
        names = "|".join(re.escape(name) for name in sorted(_domain_forms(value)))
        # Not inside a longer name on the left; on the right, not followed by more of a name ("bit.ly.x.com").
        source = r"(?<![\w.-])(?:[\w-]+\.)*(?:" + names + r")(?![\w-]|\.[\w-])"
    else:
        source = value
    return CompiledRule(kind, value, re.compile(source, FLAGS), rule_id)


def compile_rules(rules: Iterable[ContentRule]) -> list[CompiledRule]:
    """Compiles stored rules once, for checking many texts; a rule that no longer compiles is logged and skipped."""
    out = []
    for rule in rules:
        try:
            out.append(compile_rule(rule.kind, rule.value, rule.id))
        except re.error as exc:
            log.warning("content rule %s (%s) does not compile: %s", rule.id, rule.kind, exc)
    return out


def check_content(
    rules: Iterable[ContentRule | CompiledRule], texts: Iterable[str] | Mapping[str, str]
) -> RuleMatch | None:
    """The first rule broken, by text then by rule order, or None when every text passes.

    `texts` is a list of texts (each is called "variant text" in the reason) or a mapping of a label such as
    "variant B text" to the text.
    """
    given = list(rules)
    ready = [r for r in given if isinstance(r, CompiledRule)]
    if len(ready) < len(given):
        ready = compile_rules(r for r in given if isinstance(r, ContentRule)) + ready
    labelled = texts.items() if isinstance(texts, Mapping) else (("variant text", t) for t in texts)
    for where, raw in labelled:
        text = unicodedata.normalize("NFC", raw)
        folded = text.translate(_FOLD)
        for rule in ready:
            found = rule.search(text, folded)
            if found is not None:
                return _match(rule, text, found.start(), found.end(), where)
    return None


def rule_query(workspace_id: int, kind: str | None = None) -> Select[tuple[ContentRule]]:
    query = select(ContentRule).where(ContentRule.workspace_id == workspace_id)
    if kind:
        query = query.where(ContentRule.kind == kind)
    return query.order_by(ContentRule.id)


def list_rules(session: Session, workspace_id: int) -> list[ContentRule]:
    return list(session.scalars(rule_query(workspace_id)))


def get_rule(session: Session, workspace_id: int, rule_id: int) -> ContentRule:
    rule = session.get(ContentRule, rule_id)
    if rule is None or rule.workspace_id != workspace_id:
        raise NotFound(f"content rule {rule_id} not found")
    return rule


def save_rule(session: Session, workspace_id: int, kind: str, value: str) -> ContentRule:
    """Validates, normalises and stores a rule; the same rule twice is a Conflict."""
    value = check_rule(kind, value)
    exists = session.scalar(select(ContentRule.id).where(
        ContentRule.workspace_id == workspace_id, ContentRule.kind == kind, ContentRule.value == value
    ))
    if exists is not None:
        raise Conflict(f"this {kind} rule exists (id {exists})")
    rule = ContentRule(workspace_id=workspace_id, kind=kind, value=value)
    session.add(rule)
    session.flush()
    return rule


def delete_rule(session: Session, workspace_id: int, rule_id: int) -> None:
    session.delete(get_rule(session, workspace_id, rule_id))
    session.flush()


def _match(rule: CompiledRule, text: str, start: int, end: int, where: str) -> RuleMatch:
    matched = text[start:end]
    left, right = max(0, start - SNIPPET_CONTEXT), min(len(text), end + SNIPPET_CONTEXT)
    snippet = ("…" if left else "") + _SPACES.sub(" ", text[left:right]) + ("…" if right < len(text) else "")
    shown = rule.value if len(rule.value) <= 100 else rule.value[:99] + "…"
    reason = f"blocked {rule.kind} '{shown}' in {where}"
    if rule.kind != "word" or matched.casefold() != rule.value.casefold():
        reason += f": '{_SPACES.sub(' ', matched)[:100]}'"
    return RuleMatch(rule.kind, rule.value, matched, snippet, where, reason, rule.rule_id)


def _windows(regex: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches of `regex` in overlapping windows: the cost of one search is bounded by the window, not the text."""
    start = 0
    while True:
        found = regex.search(text, start, min(len(text), start + WINDOW_CHARS))
        if found is not None:
            yield found
            return
        if start + WINDOW_CHARS >= len(text):
            return
        start += WINDOW_CHARS - WINDOW_OVERLAP


def _check_word(value: str) -> str:
    words = unicodedata.normalize("NFC", value).split()
    if not any(re.search(r"\w", w) for w in words):
        raise InvalidInput("value", "a word rule needs at least one letter or digit", value)
    return " ".join(words)


def _check_domain(value: str) -> str:
    name = _SCHEME.sub("", value.strip().lower())
    name = re.split(r"[/?#]", name, maxsplit=1)[0].rsplit("@", 1)[-1]
    name = re.sub(r":\d*$", "", name).removeprefix("*.").strip(".")
    if not _DOMAIN.fullmatch(name) or "_" in name:
        raise InvalidInput("value", f"{value!r} is not a domain like bit.ly or example.com", value)
    return name


def _domain_forms(name: str) -> set[str]:
    """The domain as written and in its other IDNA form (żabka.pl and xn--abka-99a.pl)."""
    forms = {name}
    try:
        forms.add(name.encode("idna").decode("ascii"))
        forms.add(name.encode("ascii").decode("idna"))
    except UnicodeError:
        pass
    return forms


def _check_pattern(value: str) -> str:
    try:
        regex = re.compile(value, FLAGS)
    except re.error as exc:
        raise InvalidInput("value", f"not a valid regular expression: {exc.msg} at position {exc.pos}", value) from None
    if regex.search("") is not None:
        raise InvalidInput("value", "the pattern matches an empty text, so it would block every message", value)
    problem = _risk(sre_parse.parse(value, FLAGS), [])
    if problem:
        raise InvalidInput("value", problem, value)
    return value


# -- patterns that backtrack badly -------------------------------------------------------------------------

_NESTED = ("nested repetition (like (a+)+ or (a|aa)+) can take exponential time: repeat a fixed-width group, "
           "or make the outer repeat possessive, like (\\w+\\s)++")
_NEIGHBOURS = ("neighbouring repeats that can match the same characters (like .*.* or \\w+\\d+) can take very "
               "long on long texts: bound one of them, like .{0,100}")
_ANY = frozenset({("any",)})
_CATEGORIES = {sre.CATEGORY_DIGIT: ("digit",), sre.CATEGORY_WORD: ("word",), sre.CATEGORY_SPACE: ("space",)}
_SAMPLE = [chr(code) for code in range(0x250)]  # ASCII, Latin-1 and Latin Extended: enough to find overlaps


def _risk(items: sre_parse.SubPattern, pending: list[frozenset[tuple[object, ...]]]) -> str | None:
    """Why a parsed pattern may backtrack catastrophically, or None. `pending` holds the characters of long
    repeats that nothing mandatory has separated from the current position yet."""
    for op, av in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, body = av
            width = body.getwidth()
            if high > NESTED_REPEAT and width[0] != width[1]:
                return _NESTED
            problem = _risk(body, [])
            if problem:
                return problem
            chars = _chars(body) if high > LONG_REPEAT else None
            if chars is not None:
                if any(_overlap(chars, other) for other in pending):
                    return _NEIGHBOURS
                pending[:] = [*pending, chars] if low == 0 else [chars]
                continue
        elif op is sre.SUBPATTERN:
            problem = _risk(av[-1], pending)  # a group continues the same sequence
            if problem:
                return problem
            continue
        else:
            problem = _nested_risk(op, av)
            if problem:
                return problem
        if sre_parse.SubPattern(items.state, [(op, av)]).getwidth()[0] > 0:
            pending.clear()
    return None


def _nested_risk(op: object, av: object) -> str | None:
    """Looks inside alternatives, lookarounds, atomic groups and possessive repeats (each on its own)."""
    if op is sre.BRANCH:
        parts = list(av[1])  # type: ignore[index]
    elif op in (sre.ASSERT, sre.ASSERT_NOT):
        parts = [av[1]]  # type: ignore[index]
    elif op is sre.ATOMIC_GROUP:
        parts = [av]
    elif op is sre.POSSESSIVE_REPEAT:
        parts = [av[2]]  # type: ignore[index]
    elif op is sre.GROUPREF_EXISTS:
        parts = [p for p in av[1:] if p is not None]  # type: ignore[index]
    else:
        return None
    for part in parts:
        problem = _risk(part, [])
        if problem:
            return problem
    return None


def _chars(body: sre_parse.SubPattern) -> frozenset[tuple[object, ...]] | None:
    """What one repeated item can match, roughly; None when the body is not a single character."""
    if len(body.data) != 1:
        return None
    op, av = body.data[0]
    if op is sre.LITERAL:
        return frozenset({("lit", chr(av))})
    if op in (sre.ANY, sre.NOT_LITERAL):
        return _ANY
    if op is not sre.IN:
        return None
    out: set[tuple[object, ...]] = set()
    for item_op, item in av:
        if item_op is sre.LITERAL:
            out.add(("lit", chr(item)))
        elif item_op is sre.RANGE:
            out.add(("range", *item))
        elif item_op is sre.CATEGORY and item in _CATEGORIES:
            out.add(_CATEGORIES[item])
        else:  # NEGATE, \D, \W, \S: nearly everything
            return _ANY
    return frozenset(out)


def _overlap(a: frozenset[tuple[object, ...]], b: frozenset[tuple[object, ...]]) -> bool:
    if _ANY <= a or _ANY <= b:
        return True
    extra = [str(token[1]) for token in a | b if token[0] == "lit"]
    return any(_accepts(a, c) and _accepts(b, c) for c in [*_SAMPLE, *extra])


def _accepts(tokens: frozenset[tuple[object, ...]], char: str) -> bool:
    for token in tokens:
        kind = token[0]
        if kind == "lit" and str(token[1]).casefold() == char.casefold():
            return True
        if kind == "range" and any(token[1] <= ord(c) <= token[2] for c in {char, char.lower(), char.upper()}):  # type: ignore[operator]
            return True
        if (kind == "digit" and char.isdecimal()) or (kind == "space" and char.isspace()):
            return True
        if kind == "word" and (char.isalnum() or char == "_"):
            return True
    return False
