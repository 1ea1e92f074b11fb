"""`smsconnect demo`: the main job end to end on this machine: contacts imported through the real import
job, a campaign frozen, prepared, throttled and sent through the carrier simulator, delivery reports and
clicks coming back over HTTP, and a report."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click
from werkzeug.serving import make_server

from connector.cli import friendly_errors
from connector.cli.progress import follow_import, start_import
from connector.cli.run import migrate_db
from core import campaigns, db, pricing, provider_accounts, reporting, runner, sample, segments, simulator, workspaces
from core.models import Campaign
from core.settings import Settings

MAPPING = {"phone": "Mobile", "first_name": "Name", "city": "City", "last_purchase": "LastPurchase",
           "consent.marketing": "Marketing"}
AUDIENCE = {"all": [{"status": "active"}, {"consent": "marketing", "state": "opted_in"}]}
TEXT = "Hi {{ first_name | default('there') }}! Spring sale in {{ city }}: -20% until Sunday https://shop.example/spring"
PRICE_PL = Decimal("0.07")  # PLN per part, the demo's price list


def _serve_app(settings: Settings) -> tuple[Any, str]:
    """The web app on a free loopback port, so delivery reports and clicks really arrive over HTTP."""
    from connector import create_app

    holder: dict[str, Any] = {}
    server = make_server("127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True,
                         request_handler=simulator.QuietHandler)
    base = f"http://127.0.0.1:{server.port}"
    holder["app"] = create_app(settings.with_overrides(base_url=base))
    logging.getLogger().setLevel(settings.log_level)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, base


def _work(rt: Any) -> None:
    """One pass of what `smsconnect worker` and `smsconnect cron` do."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from core import jobs, queues

    SimpleWorker([queues.queue(rt.redis, n) for n in queues.ALL], connection=rt.redis,
                 serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
    runner.recover(rt)
    jobs.consume_clicks()


def _setup(rt: Any, settings: Settings, sim_url: str, secret: str, count: int) -> tuple[int, int]:
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, f"Demo {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
                                         settings.default_region, settings.timezone)
        provider_accounts.create_account(session, rt.settings, ws.id, "simulator", {"url": sim_url, "secret": secret},
                                         name="Carrier simulator", is_default=True)
        pricing.upsert_prices(session, ws.id, "simulator", [pricing.PriceRow("48", PRICE_PL, "PLN")])
        segments.save_segment(session, ws.id, "Marketing opt-ins", AUDIENCE)
    path = settings.data_dir / "demo" / f"contacts-{ws.id}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    sample.write_contacts_csv(path, count, seed=ws.id, bad_every=97)
    click.echo(f"workspace {ws.id}: importing {count} generated contacts from {path}", err=True)
    record = follow_import(rt, start_import(rt, ws.id, path, MAPPING))
    click.echo(f"import {record.status}: {record.rows_total} rows, {record.rows_created} contacts, "
               f"{record.rows_failed} rows rejected (invalid phone)", err=True)
    with db.transaction(rt.sessions) as session:
        campaign = campaigns.create_campaign(session, ws.id, {
            "name": "Spring sale", "sender_id": "SpringShop", "audience": {"filter": {"all": []}},
            "variants": [{"name": "A", "ratio": 50, "text": TEXT},
                         {"name": "B", "ratio": 50, "text": TEXT.replace("-20%", "20% off")}],
            "throttle_per_hour": 200_000, "consent_category": "marketing",
        })
    return ws.id, campaign.id


def _run(rt: Any, campaign_id: int) -> None:
    from core import actions

    with rt.sessions() as session:
        actions.submit(rt, session, session.get(Campaign, campaign_id))
    done = 0
    with click.progressbar(length=1, label="sending", file=sys.stderr) as bar:
        while True:
            _work(rt)
            with rt.sessions() as session:
                campaign = session.get(Campaign, campaign_id)
                report = reporting.campaign_report(session, campaign)
            bar.length = max(1, report["recipients"])
            bar.update(report["sent"] + report["enqueue_failed"] - done)
            done = report["sent"] + report["enqueue_failed"]
            if campaign.status in ("finished", "aborted", "suspended", "rejected"):
                return
            time.sleep(0.2)


def _settle(rt: Any, campaign_id: int, wait_s: float) -> dict[str, Any]:
    """Waits for the last delivery reports and clicks (the simulator answers after its delay)."""
    deadline = time.monotonic() + wait_s
    while True:
        _work(rt)
        with rt.sessions() as session:
            report = reporting.campaign_report(session, session.get(Campaign, campaign_id))
        if report["statuses"].get("sent", 0) == 0 or time.monotonic() > deadline:
            return report
        time.sleep(0.3)


@click.command()
@click.option("--contacts", "count", type=click.IntRange(1, 10_000_000), default=2000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@friendly_errors
def demo(count: int, as_json: bool) -> None:
    """Run the main job end to end on this machine and print a report."""
    settings = Settings.from_env()
    if "LOG_LEVEL" not in os.environ:
        settings = settings.with_overrides(log_level="WARNING")  # the progress bar and report, not logs
    migrate_db(settings)
    started = time.monotonic()
    secret = secrets.token_urlsafe(16)
    sim = simulator.start_in_thread(delay=0.3, seed=7, click_rate=0.12, secret=secret)
    server, base = _serve_app(settings)
    sim.simulator.configure({"click_base": base})
    from core import runtime

    rt = runtime.current()
    try:
        _, campaign_id = _setup(rt, settings, sim.url, secret, count)
        _run(rt, campaign_id)
        time.sleep(1.0)  # the simulator's delay, then its clicks
        report = _settle(rt, campaign_id, wait_s=15)
    finally:
        sim.stop()
        server.shutdown()
    figures = {key: report[key] for key in ("recipients", "sent", "delivered", "failed", "clicked", "ctr", "cost")}
    figures.update(excluded=report["excluded_total"], enqueue_failed=report["enqueue_failed"],
                   currency=report["currency"], seconds=round(time.monotonic() - started, 1))
    _print_report(report, figures)
    if as_json:
        click.echo(json.dumps(figures))


def _print_report(report: dict[str, Any], figures: dict[str, Any]) -> None:
    click.echo(f"\ncampaign 'Spring sale': {report['status']}"
               + (f" ({report['status_reason']})" if report["status_reason"] else ""))
    click.echo(f"  recipients {report['recipients']}  (excluded before sending: {report['excluded_total']} "
               f"{report['excluded']})")
    click.echo(f"  sent {report['sent']}  delivered {report['delivered']}  failed {report['failed']}  "
               f"not sendable {report['enqueue_failed']}")
    click.echo(f"  clicked {report['clicked']}  CTR {report['ctr']:.1%}  bot hits {report['bot_hits']}")
    click.echo(f"  cost {report['cost']:.2f} {report['currency'] or ''}  (estimated {report['estimated_cost']:.2f})")
    for v in report["variants"]:
        click.echo(f"  variant {v['name']}: sent {v['sent']}, delivered {v['delivered']}, clicked {v['clicked']}, "
                   f"CTR {v['ctr']:.1%}")
    click.echo(f"  took {figures['seconds']} s")


COMMANDS = [demo]
