"""Per-request database session and access to the shared runtime."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from core.runtime import Runtime


def rt() -> Runtime:
    return current_app.extensions["smsconnect"]  # type: ignore[no-any-return]


def db() -> Session:
    """The request's session; committed after a successful response, rolled back otherwise."""
    if "db" not in g:
        g.db = rt().sessions()
    return g.db  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    @app.after_request
    def commit(response):  # type: ignore[no-untyped-def]
        session = g.pop("db", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def close(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.rollback()
            session.close()
