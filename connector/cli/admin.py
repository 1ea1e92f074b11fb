"""Admin commands: workspaces and API keys."""

from __future__ import annotations

import click
from sqlalchemy import select

from connector.cli import friendly_errors
from core import db, runtime, workspaces
from core.models import Workspace
from core.models.workspace import ROLES
from core.settings import Settings


@click.group("workspaces")
def workspaces_group() -> None:
    """Create and list workspaces."""


@workspaces_group.command("create")
@click.argument("name")
@click.option("--region", default=None, help="default region for national phone numbers (ISO code)")
@click.option("--timezone", default=None, help="IANA time zone, e.g. Europe/Warsaw")
@friendly_errors
def create_workspace(name: str, region: str | None, timezone: str | None) -> None:
    settings = Settings.from_env()
    rt = runtime.configure(settings)
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, name, region or settings.default_region,
                                         timezone or settings.timezone)
    click.echo(f"workspace {ws.id} created: {ws.name}")


@workspaces_group.command("list")
def list_workspaces() -> None:
    rt = runtime.configure(Settings.from_env())
    with rt.sessions() as session:
        for ws in session.scalars(select(Workspace).order_by(Workspace.id)):
            click.echo(f"{ws.id}\t{ws.name}\t{ws.default_region}\t{ws.timezone}")


@click.group("keys")
def keys_group() -> None:
    """Create API keys."""


@keys_group.command("create")
@click.option("--workspace", "workspace_id", type=int, required=True, help="workspace id")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", default="", help="a label to tell keys apart")
@friendly_errors
def create_key(workspace_id: int, role: str, name: str) -> None:
    """Create a key; the secret is printed once and cannot be shown again."""
    rt = runtime.configure(Settings.from_env())
    with db.transaction(rt.sessions) as session:
        key, secret = workspaces.create_key(session, workspace_id, role, name)
    click.echo(secret)
    click.echo(f"key {key.id} ({role}) for workspace {workspace_id}; store it now, it is not shown again", err=True)


COMMANDS = [workspaces_group, keys_group]
