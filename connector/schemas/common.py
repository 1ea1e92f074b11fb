"""Schemas shared by every resource: pagination and errors."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

MAX_PAGE_SIZE = 1000


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A `{items, page, page_size, total}` envelope around `item`."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item)),
            "page": fields.Integer(),
            "page_size": fields.Integer(),
            "total": fields.Integer(),
        },
        name=name,
    )


def paginate(session: Session, query: Any, args: dict[str, int]) -> dict[str, Any]:
    """Runs one page of a SELECT plus its total count."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    page, size = args["page"], args["page_size"]
    items = session.scalars(query.limit(size).offset((page - 1) * size)).all()
    return {"items": items, "page": page, "page_size": size, "total": total}
