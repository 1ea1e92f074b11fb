"""CRM plugin commands: `smsconnect plugins list|connect|sync|status` and `smsconnect salesforce package ...`."""

from __future__ import annotations

import json
from pathlib import Path

import click
import requests

from connector.cli import friendly_errors
from core import db, runtime
from core.plugins import connections, outbox, registry, sync
from core.plugins.errors import PluginError
from core.settings import Settings


@click.group("plugins")
def plugins_group() -> None:
    """CRM plugins: list, connect, sync, status."""


@plugins_group.command("list")
def list_plugins() -> None:
    """Installed plugins; unavailable ones with the reason."""
    for name, found in registry.installed().items():
        click.echo(f"{name}\t{'available' if found.available else 'unavailable: ' + str(found.error)}")


@plugins_group.command("connect")
@click.argument("plugin")
@click.option("--workspace", "workspace_id", type=int, required=True)
@click.option("--settings", "settings_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="JSON file with the plugin's settings")
@click.option("--check/--no-check", default=True, help="log in and check the settings afterwards")
@friendly_errors
def connect(plugin: str, workspace_id: int, settings_file: Path, check: bool) -> None:
    """Connect a workspace to a CRM (settings are stored encrypted)."""
    rt = runtime.configure(Settings.from_env())
    with db.transaction(rt.sessions) as session:
        connection = connections.connect(session, rt.settings, workspace_id, plugin,
                                         json.loads(settings_file.read_text()))
        click.echo(f"{plugin} connected to workspace {workspace_id}")
        if check:
            problems = connections.run_check(rt.settings, connection)
            for p in problems:
                click.echo(f"{'problem' if p['fatal'] else 'warning'}: {p['code']}: {p['message']}", err=True)
            click.echo("check: ok" if not any(p["fatal"] for p in problems) else "check: failed")


@plugins_group.command("sync")
@click.argument("plugin")
@click.option("--workspace", "workspace_id", type=int, required=True)
@click.option("--full", is_flag=True, help="ignore the stored cursors and read everything")
@click.option("--queue", "queued", is_flag=True, help="queue it for a worker instead of running it here")
@friendly_errors
def sync_now(plugin: str, workspace_id: int, full: bool, queued: bool) -> None:
    """Sync contacts and segments now."""
    rt = runtime.configure(Settings.from_env())
    with rt.sessions() as session:
        connection_id = connections.get_connection(session, workspace_id, plugin).id
    if queued:
        click.echo(f"queued job {sync.enqueue(rt.redis, connection_id, full)}")
        return
    try:
        result = sync.run(rt, connection_id, full)
    except PluginError as exc:
        raise click.ClickException(f"sync stopped: {type(exc).__name__}: {exc}") from None
    click.echo(json.dumps(result.as_dict(), default=str))


@plugins_group.command("status")
@click.argument("plugin")
@click.option("--workspace", "workspace_id", type=int, required=True)
@friendly_errors
def status(plugin: str, workspace_id: int) -> None:
    """The connection's status, last sync, last error, API usage and write-back queue."""
    rt = runtime.configure(Settings.from_env())
    with rt.sessions() as session:
        connection = connections.get_connection(session, workspace_id, plugin)
        out = connections.status(rt.settings, connection)
        out["outbox"] = outbox.counts(session, connection.id)
        out["outbox_failures"] = outbox.failures(session, connection.id, limit=10)
    click.echo(json.dumps(out, default=str, indent=2))


@click.group("salesforce")
def salesforce_group() -> None:
    """Salesforce: the installable package."""


@salesforce_group.group("package")
def package_group() -> None:
    """Build and deploy the package CRM admins install."""


def _trigger_url(workspace_id: int) -> tuple[runtime.Runtime, str]:
    rt = runtime.configure(Settings.from_env())
    with rt.sessions() as session:
        connection = connections.get_connection(session, workspace_id, "salesforce")
        return rt, connections.status(rt.settings, connection)["trigger_url"]


@package_group.command("build")
@click.option("--workspace", "workspace_id", type=int, required=True, help="whose trigger URL goes in")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("smsconnect-sf.zip"))
@friendly_errors
def build_package(workspace_id: int, output: Path) -> None:
    """Write the deployable zip (package.xml included)."""
    from plugins.salesforce import packaging

    _, url = _trigger_url(workspace_id)
    output.write_bytes(packaging.build(url))
    click.echo(f"wrote {output}")


@package_group.command("deploy")
@click.argument("zip_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "workspace_id", type=int, required=True, help="whose Salesforce connection deploys")
@click.option("--check-only", is_flag=True, help="validate only (runs the Apex test, changes nothing)")
@click.option("--sandbox", is_flag=True)
@friendly_errors
def deploy_package(zip_path: Path, workspace_id: int, check_only: bool, sandbox: bool) -> None:
    """Deploy the zip through the Metadata API with the connection's credentials; waits for the result."""
    from plugins.salesforce import packaging
    from plugins.salesforce.client import Client
    from plugins.salesforce.settings import SalesforceSettings

    rt = runtime.configure(Settings.from_env())
    with rt.sessions() as session:
        settings = connections.decrypted(rt.settings, connections.get_connection(session, workspace_id, "salesforce"))
    client = Client(SalesforceSettings().load(settings), requests.Session())
    try:
        result = packaging.deploy(client, zip_path.read_bytes(), check_only=check_only, sandbox=sandbox)
    except PluginError as exc:
        raise click.ClickException(f"deploy failed: {type(exc).__name__}: {exc}") from None
    click.echo(json.dumps(result, default=str, indent=2))
    if result.get("state") != "Succeeded":
        raise SystemExit(1)


COMMANDS = [plugins_group, salesforce_group]
