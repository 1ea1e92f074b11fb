"""Personalisation: compile SMS templates once in a Jinja2 sandbox and render them per contact."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import jinja2
from jinja2 import exceptions as jinja_errors
from jinja2 import nodes
from jinja2.filters import do_format, sync_do_join
from jinja2.meta import find_undeclared_variables
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_eval_context

from core.errors import SmsConnectError

__all__ = [
    "MAX_POWER_BITS",
    "MAX_STRING_LENGTH",
    "MissingVariable",
    "MissingVariant",
    "RenderError",
    "Template",
    "TemplateSyntaxError",
    "UnsafeTemplate",
    "compile_template",
    "pick_variant",
]

#: Longest string (characters) one template operation may build: `*`, `%`, `format`, `replace`, `join`.
MAX_STRING_LENGTH = 10_000
#: Largest integer (bits) `**` may produce; 4,096 bits is about 1,233 decimal digits.
MAX_POWER_BITS = 4_096

T = TypeVar("T")

# Errors a user-written template can raise while rendering; each becomes a RenderError.
_TEMPLATE_FAILURES = (jinja_errors.TemplateError, ArithmeticError, LookupError, TypeError, ValueError)


# -- errors ---------------------------------------------------------------------------------------


class RenderError(SmsConnectError):
    """A template could not be compiled or rendered; the message becomes the failure reason."""


class TemplateSyntaxError(RenderError):
    """The template text is not valid; `line` and `column` are 1-based (column is best effort)."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(line, column, message)
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"template syntax error at line {self.line}, column {self.column}: {self.message}"


class UnsafeTemplate(RenderError):
    """The template tried something the sandbox refuses (private attributes, imports, huge output)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"unsafe template{where}: {self.message}"


class MissingVariable(RenderError):
    """Variables the template prints have no value (absent, "" or None) and no default."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(names)
        self.names = names

    def __str__(self) -> str:
        listed = ", ".join(self.names)
        noun = "variable" if len(self.names) == 1 else "variables"
        return f"missing {noun} without a default: {listed}"


class MissingVariant(RenderError):
    """Neither the contact's language nor the fallback language has a template variant."""

    def __init__(self, language: str | None, fallback: str, available: tuple[str, ...]) -> None:
        super().__init__(language, fallback, available)
        self.language = language
        self.fallback = fallback
        self.available = available

    def __str__(self) -> str:
        return (
            f"no template variant for language {self.language!r} nor fallback {self.fallback!r};"
            f" variants: {', '.join(self.available) or 'none'}"
        )


# -- sandbox --------------------------------------------------------------------------------------

# Set only while re-rendering a failed message to list every missing name, not just the first.
_collecting: ContextVar[list[str] | None] = ContextVar("_collecting", default=None)


class _Missing(Undefined):
    """Like StrictUndefined, but falsy in `{% if %}` so optional values can be tested."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise MissingVariable((self._undefined_name or "<unknown>",))

    def _record(self) -> None:
        found = _collecting.get()
        if found is None:
            self._fail_with_undefined_error()
        found.append(self._undefined_name or "<unknown>")

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    # Undefined binds these to its own method at class creation, so rebind them to ours.
    __add__ = __radd__ = __sub__ = __rsub__ = _fail_with_undefined_error
    __mul__ = __rmul__ = __div__ = __rdiv__ = _fail_with_undefined_error
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = _fail_with_undefined_error
    __mod__ = __rmod__ = __pos__ = __neg__ = _fail_with_undefined_error
    __call__ = __getitem__ = _fail_with_undefined_error
    __lt__ = __le__ = __gt__ = __ge__ = _fail_with_undefined_error
    __int__ = __float__ = __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error


# `%d`-style conversions with their width and precision, e.g. "%(name)-20.5s" or "%*d".
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_length(length: int, what: str) -> None:
    if length > MAX_STRING_LENGTH:
        raise UnsafeTemplate(f"{what} would build {length} characters (limit {MAX_STRING_LENGTH})")


def _check_printf(template: str) -> None:
    """Refuse printf widths that would allocate huge strings before Python builds them."""
    total = 0
    for width, precision in _PRINTF_SPEC.findall(template):
        if "*" in (width, precision):
            raise UnsafeTemplate("'*' widths are not allowed in format strings")
        total += int(width or 0) + int(precision or 0)
    _check_length(total, "format string")


class _SmsEnvironment(ImmutableSandboxedEnvironment):
    """Sandbox that also bounds string growth and fails loudly on unsafe attributes."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    _check_length(len(seq) * times, "'*' repetition")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and abs(left).bit_length() * right > MAX_POWER_BITS:
                raise UnsafeTemplate(f"'**' result exceeds {MAX_POWER_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left)
            result = self.binop_table[operator](left, right)
            _check_length(len(result), "'%' formatting")
            return result
        return self.binop_table[operator](left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise UnsafeTemplate(f"attribute {attribute!r} of {type(obj).__name__} is not accessible")


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: object, old: object, new: object, count: int | None = None) -> str:
    text, old_text, new_text = str(s), str(old), str(new)
    hits = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    _check_length(len(text) + hits * (len(new_text) - len(old_text)), "replace")
    return text.replace(old_text, new_text, -1 if count is None else count)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    _check_length(len(str(d)) * max(len(items) - 1, 0), "join")
    result = str(sync_do_join(eval_ctx, items, d, attribute))
    _check_length(len(result), "join")
    return result


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    result = do_format(value, *args, **kwargs)
    _check_length(len(result), "format")
    return result


# Filters that can multiply output from a small argument (width, fill, wrap string) or that only
# make sense for HTML/JSON; SMS is plain text.
_REMOVED_FILTERS = (
    "batch", "center", "indent", "slice", "tojson", "urlize", "wordwrap",
    "e", "escape", "forceescape", "safe", "xmlattr",
)  # fmt: skip


def _finalize(value: object) -> object:
    """Refuse to print a method, e.g. `{{ name.upper }}`: the SMS would carry its repr and address."""
    if callable(value) and not isinstance(value, Undefined):
        name = getattr(value, "__name__", type(value).__name__)
        raise UnsafeTemplate(f"{name!r} is a method, not text; use a filter instead, e.g. | upper")
    return value


_ENV = _SmsEnvironment(autoescape=False, keep_trailing_newline=True, undefined=_Missing, finalize=_finalize)
# Renders see only the caller's names (shared context); clearing range, lipsum, cycler... is a backstop.
_ENV.globals.clear()
for _name in _REMOVED_FILTERS:
    del _ENV.filters[_name]
_ENV.filters.update(replace=_replace, join=_join, format=_format)

# Only output and if/elif/else: loops, `set`, macros and calls are how a short template spends
# unbounded time or memory, and with no `set` every name is a contact attribute or engine variable.
_ALLOWED_STATEMENTS = (nodes.Template, nodes.Output, nodes.If)
_LOADERS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


# Jinja node names that differ from the tag a template author wrote.
_TAGS = {"Assign": "set", "AssignBlock": "set", "CallBlock": "call", "FilterBlock": "filter",
         "FromImport": "from", "ScopedEvalContextModifier": "autoescape"}  # fmt: skip


def _check_nodes(tree: nodes.Template) -> None:
    """Refuse template features outside the SMS subset, naming the construct and its line."""
    for node in tree.find_all(nodes.Node):
        kind = _TAGS.get(type(node).__name__, type(node).__name__.lower())
        if isinstance(node, _LOADERS):
            raise UnsafeTemplate(f"'{{% {kind} %}}' would load another template", node.lineno)
        if isinstance(node, nodes.Stmt) and not isinstance(node, _ALLOWED_STATEMENTS):
            message = f"'{{% {kind} %}}' is not supported; use {{% if %}}/elif/else"
            raise UnsafeTemplate(message, node.lineno)
        if isinstance(node, nodes.Call):
            raise UnsafeTemplate("calls are not allowed; use filters like | upper", node.lineno)
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            raise UnsafeTemplate(f"attribute {node.attr!r} is not accessible", node.lineno)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
                raise UnsafeTemplate(f"item {node.arg.value!r} is not accessible", node.lineno)


# -- compiling ------------------------------------------------------------------------------------

_OPENER = re.compile(r"\{[{%#]")  # start of {{ ... }}, {% ... %} or {# ... #}
_NEWLINE = re.compile(r"\r\n|\r|\n")  # what Jinja's lexer counts as a line break
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _position(source: str, offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of `offset`, counting line breaks as Jinja does."""
    breaks = list(_NEWLINE.finditer(source, 0, offset))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - line_start + 1


def _column_for_line(source: str, line: int) -> int:
    """Best-effort column for a Jinja error on `line`: the last tag opened by the end of it."""
    lines = _NEWLINE.split(source)
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    openers = [match.start() for match in _OPENER.finditer(text)]
    if openers:
        return openers[-1] + 1
    return len(text) - len(text.lstrip()) + 1  # a tag continued from an earlier line


def _check_text(source: str) -> None:
    bad = _BAD_CHARACTER.search(source)
    if bad is not None:
        line, column = _position(source, bad.start())
        what = "NUL byte" if bad.group() == "\x00" else "lone surrogate"
        raise TemplateSyntaxError(line, column, f"{what} U+{ord(bad.group()):04X} is not allowed")


def _defaulted(tree: nodes.Template) -> frozenset[str]:
    """Names that appear only as `name | default(...)` (or `| d`), so never cause MissingVariable."""
    wrapped = {
        id(flt.node)
        for flt in tree.find_all(nodes.Filter)
        if flt.name in ("default", "d") and isinstance(flt.node, nodes.Name)
    }
    with_default: set[str] = set()
    without: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (with_default if id(name) in wrapped else without).add(name.name)
    return frozenset(with_default - without)


def _compile_jinja(source: str) -> tuple[jinja2.Template, nodes.Template]:
    try:
        tree = _ENV.parse(source)
        _check_nodes(tree)
        return _ENV.from_string(tree), tree
    except jinja_errors.TemplateSyntaxError as exc:  # includes unknown filter names
        line = exc.lineno or 1
        column = _column_for_line(source, line)
        raise TemplateSyntaxError(line, column, exc.message or str(exc)) from None
    except RecursionError:
        raise TemplateSyntaxError(1, 1, "template is nested too deeply") from None


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """A compiled SMS template; build it with `compile_template` and render it many times.

    Attributes:
        source: The template text as given.
        variables: Top-level names the template reads (contact attributes and engine variables).
        defaulted: Those of `variables` always wrapped in a `default` filter (best effort).
    """

    source: str
    variables: frozenset[str]
    defaulted: frozenset[str]
    _text: str = field(repr=False)
    _jinja: jinja2.Template | None = field(repr=False)

    @property
    def is_plain(self) -> bool:
        """True when the text has no `{{`, `{%` or `{#`, so render returns it without Jinja."""
        return self._jinja is None

    def render(self, variables: Mapping[str, object]) -> str:
        """Render for one message.

        Args:
            variables: Contact attributes plus engine variables such as `optout_url`. A value of
                "" or None counts as missing, so `default` applies to it (0 and False do not).

        Raises:
            MissingVariable: Names printed without a value and without a default.
            UnsafeTemplate: The template reached a private attribute or built a huge string.
            RenderError: Any other failure while rendering, such as division by zero.
        """
        if self._jinja is None:
            return self._text
        present: dict[str, object] = {}
        for name in self.variables:
            value = variables.get(name)
            if value is not None and value != "":
                present[name] = value
        try:
            return self._run(present)
        except MissingVariable as exc:
            raise MissingVariable(self._missing_names(present) or exc.names) from None
        except RenderError:
            raise
        except jinja_errors.SecurityError as exc:
            raise UnsafeTemplate(str(exc)) from None
        except _TEMPLATE_FAILURES as exc:
            raise RenderError(f"template failed: {exc}") from exc

    def _run(self, present: dict[str, object]) -> str:
        assert self._jinja is not None
        return "".join(self._jinja.root_render_func(self._jinja.new_context(present, shared=True)))

    def _missing_names(self, present: dict[str, object]) -> tuple[str, ...]:
        """Render again, printing nothing for missing names, to list all of them in one error."""
        found: list[str] = []
        token = _collecting.set(found)
        try:
            self._run(present)
        except MissingVariable as exc:  # used in arithmetic or as an object, not just printed
            found.extend(exc.names)
        except (RenderError, *_TEMPLATE_FAILURES):
            pass
        finally:
            _collecting.reset(token)
        return tuple(dict.fromkeys(found))


def compile_template(source: str) -> Template:
    """Check and compile a template once so it can be rendered for many contacts.

    Raises:
        TemplateSyntaxError: Invalid Jinja syntax, an unknown filter, a NUL byte or a lone surrogate.
        UnsafeTemplate: Imports, includes, loops, `set`, calls or private attributes.
    """
    _check_text(source)
    if _OPENER.search(source) is None:
        # Jinja turns \r\n and \r into \n; do the same so both paths give the same text.
        return Template(source, frozenset(), frozenset(), _NEWLINE.sub("\n", source), None)
    compiled, tree = _compile_jinja(source)
    names = frozenset(find_undeclared_variables(tree))
    return Template(source, names, _defaulted(tree), source, compiled)


def _language_key(language: str) -> str:
    return language.strip().replace("_", "-").lower()


def pick_variant(variants: Mapping[str, T], language: str | None, fallback: str) -> T:
    """Choose the variant for a contact's language.

    Matching ignores case and treats "_" as "-": "pl-PL" takes a "pl-PL" variant if there is one,
    else "pl". A missing or unmatched language takes the `fallback` variant, matched the same way.

    Raises:
        MissingVariant: Nothing matches and there is no variant for `fallback` either.
    """
    by_key = {_language_key(key): value for key, value in variants.items()}
    for wanted in (language, fallback):
        if wanted:
            key = _language_key(wanted)
            for candidate in (key, key.split("-", 1)[0]):
                if candidate in by_key:
                    return by_key[candidate]
    raise MissingVariant(language, fallback, tuple(variants))
