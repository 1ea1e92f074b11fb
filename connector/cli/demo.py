"""`smsconnect demo`: a workspace, generated contacts imported through the real job, and a report."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from connector.cli import friendly_errors
from connector.cli.progress import follow_import, start_import
from connector.cli.run import migrate_db
from core import db, runtime, sample, segments, workspaces
from core.settings import Settings

MAPPING = {"phone": "Mobile", "first_name": "Name", "city": "City", "last_purchase": "LastPurchase",
           "consent.marketing": "Marketing"}
AUDIENCE = {"all": [{"status": "active"}, {"consent": "marketing", "state": "opted_in"}]}


@click.command()
@click.option("--contacts", "count", type=click.IntRange(1, 10_000_000), default=2000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@friendly_errors
def demo(count: int, as_json: bool) -> None:
    """Run the main job end to end on this machine and print a report."""
    settings = Settings.from_env()
    migrate_db(settings)
    rt = runtime.configure(settings)
    started = time.monotonic()
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, f"Demo {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
                                         settings.default_region, settings.timezone)
        segment = segments.save_segment(session, ws.id, "Marketing opt-ins", AUDIENCE)
    path = settings.data_dir / "demo" / f"contacts-{ws.id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    sample.write_contacts_csv(path, count, seed=ws.id, bad_every=97)
    click.echo(f"workspace {ws.id}: importing {count} generated contacts from {path}", err=True)
    record = follow_import(rt, start_import(rt, ws.id, path, MAPPING))
    with rt.sessions() as session:
        recipients = segments.count_matching(session, ws.id, segment.filter)
    figures = {
        "recipients": recipients, "sent": 0, "delivered": 0, "failed": 0, "clicked": 0, "ctr": 0.0, "cost": 0.0,
        "imported": record.rows_created + record.rows_updated, "import_errors": record.rows_failed,
        "seconds": round(time.monotonic() - started, 2),
    }
    click.echo(f"\nimport {record.status}: {record.rows_total} rows read, {record.rows_created} contacts created, "
               f"{record.rows_failed} rows rejected (invalid phone)")
    click.echo(f"segment 'Marketing opt-ins': {recipients} recipients")
    click.echo("campaign sending arrives with the campaigns issue: sent/delivered/clicks stay 0 until then")
    if as_json:
        click.echo(json.dumps(figures))


COMMANDS = [demo]
