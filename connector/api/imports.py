"""Imports API: upload a CSV/.xlsx with a column mapping; it runs as an RQ job; read progress and errors."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from connector.auth import requires, workspace_id
from connector.extensions import db, rt
from connector.schemas.common import PageArgs, paginate
from connector.schemas.imports import ImportFile, ImportForm, ImportOut, ImportPage, RowErrorPage
from core import importmap, imports, queues, storage
from core.errors import InvalidInput
from core.models import ContactImport, ImportRowError

blp = Blueprint("imports", __name__, description="Contact imports from CSV and Excel files")


def _mapping(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    if raw.lstrip().startswith("{"):
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidInput("mapping", "is not valid JSON", raw[:100]) from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise InvalidInput("mapping", "must map field names to column names", raw[:100])
        return value
    return importmap.parse_map_option(raw)


@blp.route("")
class ImportList(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ImportPage)
    def get(self, args: dict[str, int]) -> dict[str, Any]:
        query = select(ContactImport).where(ContactImport.workspace_id == workspace_id())
        return paginate(db(), query.order_by(ContactImport.id.desc()), args)

    @requires("editor")
    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFile, location="files")
    @blp.response(202, ImportOut)
    def post(self, form: dict[str, Any], _files: dict[str, Any]) -> ContactImport:
        """Upload a file (multipart field `file`) and queue its import; poll GET /imports/{id}."""
        settings = rt().settings
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput("file", "a CSV or .xlsx file is required (multipart field 'file')")
        mapping = _mapping(form.get("mapping"))
        imports.file_format(upload.filename)
        path, size = storage.save_upload(
            settings.uploads_dir, workspace_id(), upload.stream, upload.filename, settings.max_upload_bytes
        )
        record = imports.create_import(db(), workspace_id(), path, upload.filename, size, mapping)
        db().commit()  # the job must see the row
        queues.enqueue_import(rt().redis, record.id)
        return record


@blp.before_request
def allow_big_uploads() -> None:
    if request.method == "POST" and request.endpoint == "imports.ImportList":
        request.max_content_length = rt().settings.max_upload_bytes


@blp.route("/<int:import_id>")
class ImportItem(MethodView):
    @requires("viewer")
    @blp.response(200, ImportOut)
    def get(self, import_id: int) -> ContactImport:
        """Job status: status, progress 0..1 and row counts."""
        return imports.get_import(db(), workspace_id(), import_id)


@blp.route("/<int:import_id>/errors")
class ImportErrors(MethodView):
    @requires("viewer")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, RowErrorPage)
    def get(self, args: dict[str, int], import_id: int) -> dict[str, Any]:
        """The import report: rows that were skipped (line, column, reason) and merged repeats."""
        record = imports.get_import(db(), workspace_id(), import_id)
        query = select(ImportRowError).where(ImportRowError.import_id == record.id).order_by(ImportRowError.id)
        return paginate(db(), query, args)
