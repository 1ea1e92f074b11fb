"""One JSON error body everywhere (`code, status, message, errors`), and core errors mapped to HTTP."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from core import errors


def body(code: int, message: str, field_errors: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if field_errors:
        out["errors"] = field_errors
    return out


def _respond(code: int, message: str, field_errors: dict[str, Any] | None = None) -> Any:
    return jsonify(body(code, message, field_errors)), code


def init_app(app: Flask) -> None:
    @app.errorhandler(errors.InvalidInput)
    def invalid(exc: errors.InvalidInput) -> Any:
        return _respond(422, str(exc), {"json": {exc.field: [exc.message]}})

    @app.errorhandler(errors.NotFound)
    def not_found(exc: errors.NotFound) -> Any:
        return _respond(404, str(exc))

    @app.errorhandler(errors.Conflict)
    def conflict(exc: errors.Conflict) -> Any:
        return _respond(409, str(exc))

    @app.errorhandler(errors.ImportFailed)
    def import_failed(exc: errors.ImportFailed) -> Any:
        return _respond(422, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # flask-smorest puts marshmallow's field messages in exc.data["messages"].
        data = getattr(exc, "data", None) or {}
        field_errors = data.get("messages")
        message = data.get("message") or exc.description or ""
        if exc.code == 413:
            message = "request body is larger than the limit for this endpoint"
        return _respond(exc.code or 500, message, field_errors)
