"""Campaign preparation speed: a 1,000,000-recipient audience frozen and every message prepared.

Contacts are loaded first through `contacts.merge_rows` (not measured). The measured part is what a user's
submit starts: `actions.submit` (checks, audience counts, the job queued) and then the Processing job itself,
`runner.process`, run in this process as a worker would run it (audience frozen, each message rendered
from one of two A/B variants with a defaulted variable, its URL replaced by a per-recipient short link,
analysed, priced from a price list, and persisted). The queued job is left unrun: `process` does its work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/prepare.py` from root

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
    runner,
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
SAMPLE_EVERY_S = 0.05  # RSS sampling period
TEXT = ("Hi {{ first_name | default('there') }}! Spring sale in {{ city | default('your city') }}: -20% until "
        "Sunday https://shop.example/spring")
PRICE = Decimal("0.07")  # PLN per part for +48


class RssSampler(threading.Thread):
    """Samples this process's RSS (the job runs in it, threads included) and keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, _rss_kb())
            self._done.wait(SAMPLE_EVERY_S)

    def stop(self) -> float:
        """Stops sampling; returns the peak in MB."""
        self._done.set()
        self.join()
        return max(self.peak_kb, _rss_kb()) / 1024


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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


def run_processing(rt: runtime.Runtime, campaign_id: int, profile: bool = False) -> tuple[float, float, float]:
    """Submit and the Processing job; returns (seconds, CPU seconds of this process, peak RSS MB)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU of this thread
    sampler = RssSampler()
    sampler.start()
    started, cpu = time.perf_counter(), time.process_time()
    with rt.sessions() as session:
        actions.submit(rt, session, session.get(Campaign, campaign_id))
    if profiler:
        profiler.enable()
    runner.process(rt, campaign_id)  # what the worker runs for the queued job
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_SORT", "tottime")).print_stats(40)
    return seconds, cpu, sampler.stop()


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


def run(n: int, data_dir: Path, profile: bool = False) -> tuple[dict[str, Any], list[str]]:
    settings = bench_settings(data_dir)
    migrations.upgrade(settings.sqlalchemy_url)
    rt = runtime.configure(settings)
    try:
        name = rt.engine.dialect.name
        loading = time.perf_counter()
        workspace_id, campaign_id = setup(rt, n)
        print(f"{n:,} contacts loaded on {name} in {time.perf_counter() - loading:.1f} s", file=sys.stderr)
        load = os.getloadavg()[0]
        seconds, cpu_s, peak_mb = run_processing(rt, campaign_id, profile)
        print(f"prepared {n:,} messages in {seconds:.1f} s ({cpu_s:.1f} s CPU), peak RSS {peak_mb:.0f} MB; "
              f"load average {load:.1f} on {os.cpu_count()} CPUs", file=sys.stderr)
        problems = check(rt, campaign_id, n)
        if settings.database_url:  # a temporary SQLite file goes with its directory
            drop_workspace(rt, workspace_id)
    finally:
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
    }
    return figures, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the bench and prints the JSON result as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RECIPIENTS:,} recipients, not "
                                                             f"{FULL_RECIPIENTS:,}")
    parser.add_argument("--recipients", type=int, help="number of recipients (overrides --quick)")
    parser.add_argument("--profile", action="store_true", help="cProfile the job (slower), top functions to stderr")
    args = parser.parse_args(argv)
    n = args.recipients if args.recipients else QUICK_RECIPIENTS if args.quick else FULL_RECIPIENTS
    if n < 1:
        parser.error("--recipients must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        figures, problems = run(n, Path(tmp), args.profile)
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    print(f"prepared {figures['per_s']:,} messages/s, {figures['seconds']} s against a goal of "
          f"{figures['goal_s']:g} s (ratio {figures['ratio']}), peak RSS {figures['peak_rss_mb']} MB")
    print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
