"""Campaign preparation speed: a 1,000,000-recipient audience frozen and every message prepared.

Contacts are loaded first through `contacts.merge_rows` (not measured). The measured part is what a user's
submit starts, as in production: `actions.submit` (checks, audience counts, the job queued), then the
Processing job and its parts run by `--workers` real `smsconnect worker` processes (2 by default, one per core
of this machine), until the campaign leaves Processing. Each message is rendered from one of two A/B variants
with a defaulted variable, its URL replaced by a per-recipient short link, analysed, priced from a price list,
and persisted. Memory is the peak of the workers' summed PSS (their forked job processes included); CPU is the
workers' own, job processes included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/prepare.py` from root

import procs  # noqa: E402  (bench/procs.py: this script's directory is on sys.path)
from sqlalchemy import delete, func, select  # noqa: E402

from core import (  # noqa: E402
    actions,
    audience,
    campaigns,
    contacts,
    db,
    migrations,
    pricing,
    provider_accounts,
    redisdb,
    runtime,
    sample,
    workspaces,
)
from core.models import Campaign, Message, ShortLink, Workspace  # noqa: E402
from core.settings import Settings  # noqa: E402

FULL_RECIPIENTS = 1_000_000
QUICK_RECIPIENTS = 100_000
GOAL_S = 60.0  # the goal for 1M recipients on this 2-core machine
GOAL_RSS_MB = 500
LOAD_CHUNK = 20_000  # contacts per merge_rows call while loading (not measured)
TEXT = ("Hi {{ first_name | default('there') }}! Spring sale in {{ city | default('your city') }}: -20% until "
        "Sunday https://shop.example/spring")
PRICE = Decimal("0.07")  # PLN per part for +48


def bench_settings(data_dir: Path) -> Settings:
    """Settings from the environment (DATABASE_URL, REDIS_URL, ...), with the data dir in `data_dir`."""
    return Settings.from_env({**os.environ, "SMSCONNECT_DATA_DIR": str(data_dir)})


def load_contacts(rt: runtime.Runtime, workspace_id: int, n: int) -> None:
    """n generated Polish mobile contacts; one in ten has no first name, so the default applies."""
    import random

    rng = random.Random(7)
    for start in range(0, n, LOAD_CHUNK):
        rows = []
        for i in range(start, min(n, start + LOAD_CHUNK)):
            _, e164 = sample.phone_forms(rng, i)
            attrs = {"city": sample.CITIES[i % len(sample.CITIES)]}
            if i % 10:
                attrs["first_name"] = sample.FIRST_NAMES[i % (len(sample.FIRST_NAMES) - 1)]
            rows.append(contacts.ContactRow(phone=e164, attributes=attrs))
        with db.transaction(rt.sessions) as session:
            contacts.merge_rows(session, workspace_id, rows, source="bench")


def setup(rt: runtime.Runtime, n: int) -> tuple[int, int]:
    """A workspace with a simulator account, a +48 price list, n contacts and a Draft campaign."""
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, f"bench prepare {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                         rt.settings.default_region, rt.settings.timezone)
        provider_accounts.create_account(session, rt.settings, ws.id, "simulator",
                                         {"url": "http://127.0.0.1:9", "secret": "bench"}, is_default=True)
        pricing.upsert_prices(session, ws.id, "simulator", [pricing.PriceRow("48", PRICE, "PLN")])
    load_contacts(rt, ws.id, n)
    with db.transaction(rt.sessions) as session:
        campaign = campaigns.create_campaign(session, ws.id, {
            "name": "Bench", "sender_id": "SpringShop", "audience": {"filter": {"all": []}},
            "variants": [{"name": "A", "ratio": 50, "text": TEXT},
                         {"name": "B", "ratio": 50, "text": TEXT.replace("-20%", "20% off")}],
            # Scheduled far ahead: when Processing ends the campaign waits instead of queueing lanes.
            "schedule_at": _in_days(365), "consent_category": None,
        })
    return ws.id, campaign.id


def _in_days(days: int) -> Any:
    from datetime import timedelta

    from core.models.base import utcnow

    return utcnow() + timedelta(days=days)


class Workers:
    """`--workers` `smsconnect worker` processes on the bench's database and Redis."""

    def __init__(self, settings: Settings, n: int) -> None:
        env = {**os.environ, "SMSCONNECT_DATA_DIR": str(settings.data_dir), "LOG_LEVEL": "WARNING"}
        self.children = [subprocess.Popen([sys.executable, "-m", "connector.cli", "worker"], env=env,
                                          stdout=subprocess.DEVNULL, start_new_session=True) for _ in range(n)]

    def wait_ready(self, rt: runtime.Runtime, timeout: float = 60.0) -> None:
        from rq import Worker

        deadline = time.monotonic() + timeout
        while len(Worker.all(connection=rt.redis)) < len(self.children):
            if time.monotonic() > deadline or any(c.poll() is not None for c in self.children):
                raise RuntimeError("the workers did not start")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def cpu_s(self) -> float:
        """CPU seconds of the workers so far, their ended job processes included."""
        return sum(procs.cpu_ticks(pid, reaped_children=True) or 0 for pid in self.pids()) / os.sysconf(
            "SC_CLK_TCK")

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def run_processing(rt: runtime.Runtime, campaign_id: int, workers: Workers,
                   timeout: float = 3600) -> tuple[float, float, float]:
    """Submit, then the workers' Processing; returns (seconds, CPU seconds of the workers, peak PSS MB)."""
    sampler = procs.MemorySampler(workers.pids, pss=True)
    sampler.start()
    cpu = workers.cpu_s()
    started = time.perf_counter()
    with rt.sessions() as session:
        actions.submit(rt, session, session.get(Campaign, campaign_id))
    deadline = time.monotonic() + timeout
    while _status(rt, campaign_id) == "processing" and time.monotonic() < deadline:
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    time.sleep(0.2)  # the last job process is reaped: its CPU then counts as the worker's
    return seconds, workers.cpu_s() - cpu, sampler.stop()


def _status(rt: runtime.Runtime, campaign_id: int) -> str:
    with rt.sessions() as session:
        return str(session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)))


def check(rt: runtime.Runtime, campaign_id: int, n: int) -> list[str]:
    """What is wrong with the prepared campaign (empty when every recipient has one priced, linked message)."""
    problems = []
    with rt.sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        messages, waiting, variants, priced = session.execute(
            select(func.count(), func.count().filter(Message.status == "waiting"),
                   func.count(func.distinct(Message.variant_id)), func.count(Message.cost))
            .where(Message.campaign_id == campaign_id)).one()
        links = session.scalar(select(func.count()).select_from(ShortLink)
                               .where(ShortLink.campaign_id == campaign_id))
        sample_text = session.scalar(select(Message.text).where(Message.campaign_id == campaign_id).limit(1))
    if campaign.status != "scheduled":
        problems.append(f"campaign is {campaign.status} ({campaign.status_reason}), expected scheduled")
    if (messages, waiting, priced, links) != (n, n, n, n):
        problems.append(f"{messages} messages, {waiting} waiting, {priced} priced, {links} short links; "
                        f"expected {n} of each")
    if variants != 2:
        problems.append(f"{variants} variants used, expected 2")
    if sample_text and "shop.example" in sample_text:
        problems.append(f"the URL was not shortened: {sample_text!r}")
    return problems


def drop_workspace(rt: runtime.Runtime, workspace_id: int) -> None:
    """Removes the bench workspace again (contacts, campaign, messages and links cascade with it)."""
    with db.transaction(rt.sessions) as session:
        session.execute(delete(Workspace).where(Workspace.id == workspace_id))


def run(n: int, data_dir: Path, n_workers: int) -> tuple[dict[str, Any], list[str]]:
    settings = bench_settings(data_dir)
    migrations.upgrade(settings.sqlalchemy_url)
    rt = runtime.configure(settings)
    workers = Workers(settings, n_workers)
    try:
        workers.wait_ready(rt)
        name = rt.engine.dialect.name
        loading = time.perf_counter()
        workspace_id, campaign_id = setup(rt, n)
        print(f"{n:,} contacts loaded on {name} in {time.perf_counter() - loading:.1f} s", file=sys.stderr)
        load = os.getloadavg()[0]
        seconds, cpu_s, peak_mb = run_processing(rt, campaign_id, workers)
        print(f"prepared {n:,} messages in {seconds:.1f} s ({cpu_s:.1f} s CPU of the workers), "
              f"peak PSS {peak_mb:.0f} MB; "
              f"load average {load:.1f} on {os.cpu_count()} CPUs", file=sys.stderr)
        problems = check(rt, campaign_id, n)
        with rt.sessions() as session:
            parts = len(session.get(Campaign, campaign_id).prepare_plan or []) + 1
        if settings.database_url:  # a temporary SQLite file goes with its directory
            drop_workspace(rt, workspace_id)
    finally:
        workers.stop()
        runtime.reset()
        if not settings.redis_url:
            redisdb.stop_embedded(data_dir)
    figures = {
        "recipients": n,
        "seconds": round(seconds, 1),
        "per_s": round(n / seconds),
        "peak_rss_mb": round(peak_mb),
        "cpu_s": round(cpu_s, 1),
        "load_avg": round(load, 1),
        "goal_s": GOAL_S * n / FULL_RECIPIENTS,
        "ratio": round(seconds / (GOAL_S * n / FULL_RECIPIENTS), 2),
        "goal_rss_mb": GOAL_RSS_MB,
        "database": name,
        "batch": audience.BATCH,
        "workers": n_workers,
        "parts": parts,
    }
    return figures, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the bench and prints the JSON result as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RECIPIENTS:,} recipients, not "
                                                             f"{FULL_RECIPIENTS:,}")
    parser.add_argument("--recipients", type=int, help="number of recipients (overrides --quick)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2, one per core here)")
    args = parser.parse_args(argv)
    n = args.recipients if args.recipients else QUICK_RECIPIENTS if args.quick else FULL_RECIPIENTS
    if n < 1:
        parser.error("--recipients must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        figures, problems = run(n, Path(tmp), args.workers)
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    print(f"prepared {figures['per_s']:,} messages/s, {figures['seconds']} s against a goal of "
          f"{figures['goal_s']:g} s (ratio {figures['ratio']}), peak RSS {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
