"""Plain factory functions with defaults and keyword overrides."""

from __future__ import annotations

from typing import Any

from core import contacts, db, workspaces
from core.models import Contact, Workspace
from core.runtime import Runtime


def make_workspace(rt: Runtime, name: str = "Acme", region: str = "PL") -> Workspace:
    with db.transaction(rt.sessions) as session:
        return workspaces.create_workspace(session, name, region)


def make_key(rt: Runtime, workspace_id: int, role: str = "admin") -> str:
    with db.transaction(rt.sessions) as session:
        return workspaces.create_key(session, workspace_id, role)[1]


def make_contact(rt: Runtime, ws: Workspace, phone: str = "+48600100200", **data: Any) -> Contact:
    with db.transaction(rt.sessions) as session:
        contact = contacts.create_contact(session, ws, {"phone": phone, **data})
        return contacts.get_contact(session, ws.id, contact.id)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Tenant:
    """A workspace with one key per role, and an HTTP client that sends the chosen key."""

    def __init__(self, rt: Runtime, client: Any, name: str = "Acme") -> None:
        self.ws = make_workspace(rt, name)
        self.keys = {role: make_key(rt, self.ws.id, role) for role in ("viewer", "editor", "admin")}
        self.client = client

    def call(self, method: str, url: str, role: str = "admin", headers: dict[str, str] | None = None,
             **kwargs: Any) -> Any:
        return self.client.open(url, method=method, headers={**auth(self.keys[role]), **(headers or {})}, **kwargs)
