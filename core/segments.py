"""Segments: saved filters compiled to SQL, with one extension point for new condition kinds.

A filter is a tree: `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}`, or a condition whose kind is
its first known key: `attr`, `status`, `consent`, `tag`, `group`, `created`, `updated`, ... Other
issues add kinds (e.g. "clicked in campaign X") with `register_condition`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.models import Consent, Contact, ContactTag, GroupMember, Segment
from core.models.contact import STATUSES

MAX_DEPTH = 8
MAX_CONDITIONS = 200


@dataclass(frozen=True)
class FilterContext:
    """What a condition builder may need besides the condition itself."""

    workspace_id: int
    path: str  # where in the filter this condition sits, for error messages


Builder = Callable[[Mapping[str, Any], FilterContext], ColumnElement[bool]]
_BUILDERS: dict[str, Builder] = {}


def register_condition(kind: str, builder: Builder) -> None:
    """Adds a condition kind; `builder(cond, ctx)` returns a SQL clause over `Contact`."""
    if kind in _BUILDERS:
        raise ValueError(f"condition kind {kind!r} is already registered")
    _BUILDERS[kind] = builder


def condition_kinds() -> list[str]:
    return sorted(_BUILDERS)


def compile_filter(tree: Any, workspace_id: int) -> ColumnElement[bool]:
    """Validates a filter tree and turns it into a WHERE clause (raises InvalidInput naming the path)."""
    counter = [0]
    return _compile(tree, FilterContext(workspace_id, "filter"), 0, counter)


def _compile(node: Any, ctx: FilterContext, depth: int, counter: list[int]) -> ColumnElement[bool]:
    if depth > MAX_DEPTH:
        raise InvalidInput(ctx.path, f"nested deeper than {MAX_DEPTH} levels")
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise InvalidInput(ctx.path, f"more than {MAX_CONDITIONS} conditions")
    if not isinstance(node, Mapping) or not node:
        raise InvalidInput(ctx.path, "must be a non-empty object", node)
    for op, join in (("all", and_), ("any", or_)):
        if op in node:
            items = node[op]
            if not isinstance(items, list):
                raise InvalidInput(f"{ctx.path}.{op}", "must be a list", items)
            if not items:
                return true() if op == "all" else false()
            parts = [
                _compile(item, FilterContext(ctx.workspace_id, f"{ctx.path}.{op}[{i}]"), depth + 1, counter)
                for i, item in enumerate(items)
            ]
            return join(*parts)
    if "not" in node:
        return not_(_compile(node["not"], FilterContext(ctx.workspace_id, f"{ctx.path}.not"), depth + 1, counter))
    kind = next((k for k in node if k in _BUILDERS), None)
    if kind is None:
        known = ", ".join(["all", "any", "not", *condition_kinds()])
        raise InvalidInput(ctx.path, f"unknown condition {sorted(node)}; expected one of {known}", dict(node))
    return _BUILDERS[kind](node, FilterContext(ctx.workspace_id, f"{ctx.path}.{kind}"))


# --- built-in condition kinds -------------------------------------------------------------------

_ATTR_OPS = ("eq", "ne", "in", "not_in", "contains", "starts_with", "gt", "gte", "lt", "lte", "exists",
             "not_exists")


def _attr(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
    name, op, value = cond["attr"], cond.get("op", "eq"), cond.get("value")
    if not isinstance(name, str) or not name:
        raise InvalidInput(ctx.path, "must name an attribute", name)
    if op not in _ATTR_OPS:
        raise InvalidInput(f"{ctx.path}.op", f"{op!r} is not one of {', '.join(_ATTR_OPS)}", op)
    text = Contact.attributes[name].as_string()
    if op == "exists":
        return text.is_not(None)
    if op == "not_exists":
        return text.is_(None)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{ctx.path}.value", "must be a non-empty list", value)
        clause = text.in_([str(v) for v in value])
        return clause if op == "in" else or_(text.is_(None), not_(clause))
    if value is None:
        raise InvalidInput(f"{ctx.path}.value", "is required for this op")
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(text, op, value, ctx)
    if op == "eq":
        return text == str(value)
    if op == "ne":
        return or_(text.is_(None), text != str(value))
    pattern = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == "contains":
        return func.lower(text).like(f"%{pattern.lower()}%", escape="\\")
    return text.like(f"{pattern}%", escape="\\")


def _compare(text: Any, op: str, value: Any, ctx: FilterContext) -> ColumnElement[bool]:
    # Numbers compare as numbers; anything else (ISO dates like last_purchase) compares as text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        left, right = func.cast(text, _float_type()), float(value)
    elif isinstance(value, str):
        left, right = text, value
    else:
        raise InvalidInput(f"{ctx.path}.value", "must be a number or a string", value)
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _float_type() -> Any:
    from sqlalchemy import Float

    return Float()


def _status(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
    wanted = cond["status"]
    values = wanted if isinstance(wanted, list) else [wanted]
    bad = [v for v in values if v not in STATUSES]
    if bad or not values:
        raise InvalidInput(ctx.path, f"{bad or values!r} not in {', '.join(STATUSES)}", wanted)
    return Contact.status.in_(values)


def _consent(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
    category, state = cond["consent"], cond.get("state", "opted_in")
    if state not in ("opted_in", "opted_out", "unknown"):
        raise InvalidInput(f"{ctx.path}.state", "must be opted_in, opted_out or unknown", state)
    base = select(Consent.contact_id).where(Consent.contact_id == Contact.id, Consent.category == category)
    if state == "unknown":
        return ~exists(base)
    return exists(base.where(Consent.opted_in.is_(state == "opted_in")))


def _tag(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
    tags = cond["tag"] if isinstance(cond["tag"], list) else [cond["tag"]]
    if not tags or not all(isinstance(t, str) for t in tags):
        raise InvalidInput(ctx.path, "must be a tag or a list of tags", cond["tag"])
    return exists(select(ContactTag.contact_id).where(ContactTag.contact_id == Contact.id, ContactTag.tag.in_(tags)))


def _group(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
    group_id = cond["group"]
    if not isinstance(group_id, int):
        raise InvalidInput(ctx.path, "must be a group id", group_id)
    return exists(
        select(GroupMember.contact_id).where(GroupMember.contact_id == Contact.id, GroupMember.group_id == group_id)
    )


def _range(column: Any) -> Builder:
    def build(cond: Mapping[str, Any], ctx: FilterContext) -> ColumnElement[bool]:
        spec = next(iter(v for k, v in cond.items() if k in ("created", "updated")))
        if not isinstance(spec, Mapping) or not ({"from", "to"} & set(spec)):
            raise InvalidInput(ctx.path, 'must be {"from": ISO time, "to": ISO time} (either may be left out)', spec)
        clauses = []
        for key, cmp in (("from", column.__ge__), ("to", column.__lt__)):
            if spec.get(key) is None:
                continue
            try:
                moment = datetime.fromisoformat(str(spec[key]).replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInput(f"{ctx.path}.{key}", "must be an ISO 8601 time", spec[key]) from None
            clauses.append(cmp(moment))
        return and_(*clauses)

    return build


register_condition("attr", _attr)
register_condition("status", _status)
register_condition("consent", _consent)
register_condition("tag", _tag)
register_condition("group", _group)
register_condition("created", _range(Contact.created_at))
register_condition("updated", _range(Contact.updated_at))


# --- stored segments ----------------------------------------------------------------------------


def contacts_query(workspace_id: int, tree: Any) -> Any:
    """SELECT of the contacts matching a filter tree within one workspace."""
    return select(Contact).where(Contact.workspace_id == workspace_id, compile_filter(tree, workspace_id))


def count_matching(session: Session, workspace_id: int, tree: Any) -> int:
    query = select(func.count()).select_from(Contact).where(
        Contact.workspace_id == workspace_id, compile_filter(tree, workspace_id)
    )
    return session.scalar(query) or 0


def get_segment(session: Session, workspace_id: int, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.workspace_id != workspace_id:
        raise NotFound(f"segment {segment_id} not found")
    return segment


def save_segment(session: Session, workspace_id: int, name: str, tree: Any, segment: Segment | None = None) -> Segment:
    compile_filter(tree, workspace_id)  # validate before storing
    if segment is None:
        segment = Segment(workspace_id=workspace_id, name=name, filter=tree)
        session.add(segment)
    else:
        segment.name, segment.filter = name, tree
    session.flush()
    return segment
