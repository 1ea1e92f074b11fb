"""Import schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from connector.schemas.common import page_schema
from core.imports import progress


class ImportOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    file_format = fields.String()
    mapping = fields.Dict()
    status = fields.String(metadata={"description": "queued | running | finished | failed"})
    message = fields.String(allow_none=True)
    encoding = fields.String(allow_none=True)
    progress = fields.Function(progress, metadata={"description": "0..1"})
    size_bytes = fields.Integer()
    bytes_read = fields.Integer()
    rows_total = fields.Integer()
    rows_created = fields.Integer()
    rows_updated = fields.Integer()
    rows_failed = fields.Integer()
    rows_duplicate = fields.Integer()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RowErrorOut(Schema):
    line = fields.Integer()
    column = fields.String(allow_none=True)
    value = fields.String(allow_none=True)
    reason = fields.String()
    severity = fields.String()


class ImportForm(Schema):
    mapping = fields.String(
        metadata={"description": 'JSON {"phone": "Mobile", "first_name": "Name"} or phone=Mobile,first_name=Name'}
    )


class ImportFile(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"}, required=True)


ImportPage = page_schema(ImportOut, "ImportPage")
RowErrorPage = page_schema(RowErrorOut, "RowErrorPage")
