"""API key → workspace + role. `Authorization: Bearer <key>`; 401 without a valid key, 403 for a weak role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from flask_smorest import abort

from connector.extensions import db
from core import workspaces
from core.workspaces import KeyIdentity

F = TypeVar("F", bound=Callable[..., Any])


def identity() -> KeyIdentity:
    return g.identity  # type: ignore[no-any-return]


def workspace_id() -> int:
    return identity().workspace_id


def requires(role: str) -> Callable[[F], F]:
    """Decorates a view: the caller's key must have at least `role` (viewer < editor < admin)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                abort(401, message="missing API key: send 'Authorization: Bearer <key>'")
            found = workspaces.authenticate(db(), secret.strip())
            if found is None:
                abort(401, message="invalid or revoked API key")
            if not workspaces.role_allows(found.role, role):
                abort(403, message=f"this key's role {found.role!r} may not do this; it needs {role!r}")
            g.identity = found
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
