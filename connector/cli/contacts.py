"""`smsconnect contacts import FILE --map phone=Mobile,first_name=Name`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from connector.cli import friendly_errors
from connector.cli.progress import follow_import, start_import
from core import importmap, runtime
from core.settings import Settings


@click.group("contacts")
def contacts_group() -> None:
    """Contact imports."""


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "workspace_id", type=int, required=True)
@click.option("--map", "mapping", default="", help="field=Column pairs, e.g. phone=Mobile,first_name=Name")
@friendly_errors
def import_contacts(file: Path, workspace_id: int, mapping: str) -> None:
    """Import a CSV or .xlsx file (merge by phone), showing progress; prints the import report."""
    rt = runtime.configure(Settings.from_env())
    parsed = importmap.parse_map_option(mapping) if mapping else None
    if parsed:
        importmap.check_mapping(parsed)
    record = follow_import(rt, start_import(rt, workspace_id, file, parsed))
    click.echo(
        f"import {record.id} {record.status}: {record.rows_total} rows, {record.rows_created} created, "
        f"{record.rows_updated} updated, {record.rows_duplicate} repeated, {record.rows_failed} failed"
    )
    if record.message:
        click.echo(f"reason: {record.message}", err=True)
    if record.rows_failed:
        click.echo(f"row errors: GET /api/v1/imports/{record.id}/errors", err=True)
    if record.status == "failed":
        sys.exit(2)


COMMANDS = [contacts_group]
