"""Throttled dispatch: rate accuracy, smoothness and exactly-once, from the carrier simulator's own record.

Everything runs as it does in production, each in its own process: the simulator (`python -m core.simulator`),
the web app under gunicorn (`python -m connector.cli serve`, which stores the simulator's delivery reports),
two RQ workers (`python -m connector.cli worker`) and the scheduler (`python -m connector.cli cron`, which
queues the recovery sweep). A campaign is submitted as a user would (`actions.submit`); the workers prepare
and send it. Two throttles are measured: 200,000/h for 5 minutes and 3,600/h for 2 minutes.

The ceiling comes first, before the RQ workers start: a campaign sent unthrottled by two processes of this
bench that call `runner.run_lane(..., per_hour_override=0)` (no user-visible setting), timed from the first
lane to the last delivery report stored, beside a bare loop that only posts the same batches (run just before
and just after ours; the ratio uses their mean).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/dispatch.py` from root

import requests  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from core import (  # noqa: E402
    actions,
    campaigns,
    contacts,
    db,
    dispatch,
    migrations,
    pricing,
    processing,
    provider_accounts,
    queues,
    redisdb,
    runner,
    runtime,
    sample,
    workspaces,
)
from core.models import Campaign, Message  # noqa: E402
from core.models.base import as_utc  # noqa: E402
from core.settings import Settings  # noqa: E402

FAST_PER_H, FAST_S, FAST_QUICK_S = 200_000, 300, 60  # the two throttles, and how long each runs
SLOW_PER_H, SLOW_S, SLOW_QUICK_S = 3_600, 120, 30
# Messages of the unthrottled run: enough that the fixed part of the path (the simulator's SIM_DELAY_S before
# the reports, the last batch's reports) is a small share of the time (about 0.25 s: 15% of a 20,000 run).
CEILING_N, CEILING_QUICK_N = 100_000, 20_000
SIM_DELAY_S = 0.2  # simulator: seconds from acceptance to the delivery report
BATCH = 500  # messages per /send in the bare loop (the simulator provider's max_batch)
TEXT = "Hi {{ first_name | default('there') }}! Spring sale: -20% until Sunday. Reply STOP to opt out."
GOAL_RATE_ERROR, GOAL_BURST, GOAL_CEILING_RATIO = 0.01, 1.25, 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """The simulator, the web app, and (from `start_workers`) two RQ workers and cron, as subprocesses."""

    def __init__(self, data_dir: Path) -> None:
        self.sim_port, self.app_port = _free_port(), _free_port()
        self.secret = secrets.token_urlsafe(16)
        self.sim_url, self.app_url = f"http://127.0.0.1:{self.sim_port}", f"http://127.0.0.1:{self.app_port}"
        self.env = {**os.environ, "SMSCONNECT_DATA_DIR": str(data_dir), "SMSCONNECT_BASE_URL": self.app_url,
                    "PORT": str(self.app_port), "LOG_LEVEL": "WARNING"}
        self.children: list[subprocess.Popen[bytes]] = []
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.secret}"

    def _spawn(self, *argv: str) -> None:
        self.children.append(subprocess.Popen([sys.executable, *argv], env=self.env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True))

    def start_services(self) -> None:
        self._spawn("-m", "core.simulator", "--port", str(self.sim_port), "--delay", str(SIM_DELAY_S),
                    "--secret", self.secret, "--seed", "7")
        self._spawn("-m", "connector.cli", "serve", "--workers", "2", "--bind", f"127.0.0.1:{self.app_port}")
        for url in (self.sim_url, self.app_url):
            _wait_http(f"{url}/healthz")

    def start_workers(self) -> None:
        for _ in range(2):
            self._spawn("-m", "connector.cli", "worker")
        self._spawn("-m", "connector.cli", "cron")

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.sim_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def records(self, prefix: str) -> list[dict[str, Any]]:
        """Every record of the simulator's log whose key starts with `prefix`."""
        out, after = [], 0
        while True:
            page = self.sim("GET", "/log", params={"after": after, "limit": 100_000})
            out += [r for r in page["records"] if str(r["key"]).startswith(prefix)]
            if not page["records"]:
                return out
            after = page["next"]

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def setup_workspace(rt: runtime.Runtime, stack: Stack, n: int) -> int:
    """A workspace with the simulator as its provider, a price list, and n contacts."""
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, f"bench dispatch {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                         rt.settings.default_region, rt.settings.timezone)
        provider_accounts.create_account(session, rt.settings, ws.id, "simulator",
                                         {"url": stack.sim_url, "secret": stack.secret}, is_default=True)
        pricing.upsert_prices(session, ws.id, "simulator", [pricing.PriceRow("48", "0.07", "PLN")])
    import random

    rng = random.Random(ws.id)
    rows = [contacts.ContactRow(phone=sample.phone_forms(rng, i)[1], attributes={"first_name": "Ann"})
            for i in range(n)]
    for start in range(0, n, 20_000):
        with db.transaction(rt.sessions) as session:
            contacts.merge_rows(session, ws.id, rows[start : start + 20_000], source="bench")
    return ws.id


def new_campaign(rt: runtime.Runtime, workspace_id: int, n: int, per_hour: int, name: str) -> int:
    """A Draft campaign to n contacts of the workspace that no earlier campaign of the bench had: a report of
    ERROR archives its contact, which would then be excluded from the next campaign."""
    from core.models import Contact

    with db.transaction(rt.sessions) as session:
        used = select(Message.contact_id).where(Message.workspace_id == workspace_id)
        ids = list(session.scalars(select(Contact.id).where(Contact.workspace_id == workspace_id,
                                                            Contact.id.not_in(used)).order_by(Contact.id).limit(n)))
        campaign = campaigns.create_campaign(session, workspace_id, {
            "name": name, "sender_id": "BenchShop", "audience": {"contact_ids": ids},
            "variants": [{"name": "A", "ratio": 100, "text": TEXT}], "throttle_per_hour": per_hour,
            "consent_category": None,
        })
        return campaign.id


def _prepared(rt: runtime.Runtime, campaign_id: int) -> int:
    """Messages of the campaign that were prepared to be sent (the ones the simulator must see once each)."""
    with rt.sessions() as session:
        return session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                         Message.status != "enqueue_failed")) or 0


def _status(rt: runtime.Runtime, campaign_id: int) -> tuple[str, Counter[str]]:
    with rt.sessions() as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        counts = Counter(dict(session.execute(select(Message.status, func.count())
                                              .where(Message.campaign_id == campaign_id)
                                              .group_by(Message.status)).all()))
    return str(status), counts


def wait_reported(rt: runtime.Runtime, campaign_id: int, timeout: float) -> None:
    """Waits until the campaign is finished and every message has its final status (its report stored).

    Until the campaign is finished it reads only the campaign's status; then it counts the messages still waiting
    or sent (a range of the dispatch index, shrinking as the last reports arrive). Counting them five times a
    second from the start took 0.08 to 0.10 s of CPU from the 4-second path it measures, against 0.02 to 0.03 s
    now; counting every status, a tenth of a core."""
    deadline = time.monotonic() + timeout
    while True:
        with rt.sessions() as session:
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
            done = status == "finished" and not session.scalar(select(func.count()).where(
                Message.campaign_id == campaign_id, Message.status.in_(("waiting", "sent"))))
        if done:
            return
        if status in ("suspended", "aborted", "rejected") or time.monotonic() > deadline:
            raise RuntimeError(f"campaign {campaign_id} is {status} with {dict(_status(rt, campaign_id)[1])} "
                               f"after waiting")
        time.sleep(0.2)


# --- the unthrottled ceiling -------------------------------------------------------------------------------


def _lane_process(settings: Settings, campaign_id: int, lane: int, ready: Any) -> None:
    """A bench-only sender: the real lane loop with the throttle off, until the campaign is finished. It starts
    when every lane is ready: a worker process is up before a campaign reaches it, and the second lane's start-up
    (a second of CPU, importing the app) would otherwise run beside the first lane's sending. For the same reason
    it builds the provider once before (the first build validates the account's settings: 0.1 s of CPU)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="lane %(process)d: %(name)s: %(message)s")
    logging.getLogger("core.providers").setLevel(logging.INFO)  # shows a retried POST (a duplicate's cause)
    rt = runtime.configure(settings)
    with rt.sessions() as session:  # what a long-running worker did once already: 0.1 s compiling URL patterns
        runner.build_provider(rt, runner.account_for(session, session.get(Campaign, campaign_id)))
    runtime.freeze_heap()  # as `smsconnect worker` does before its jobs start
    ready.wait()
    while _status(rt, campaign_id)[0] in ("started", "sending"):
        runner.run_lane(rt, campaign_id, lane, per_hour_override=0)


def run_ceiling(rt: runtime.Runtime, stack: Stack, workspace_id: int,
                n: int) -> tuple[float, float, dict[str, int], list[str]]:
    """(our messages/s through the whole path, the bare loop's, duplicates and lost, problems)."""
    campaign_id = new_campaign(rt, workspace_id, n, 200_000, "Ceiling")
    with db.transaction(rt.sessions) as session:  # what submit does, minus queueing the job we run here
        campaigns.set_status(session.get(Campaign, campaign_id), "submit")
    dispatch.set_halt(rt.redis, campaign_id, False)
    processing.process(rt, campaign_id)  # part 0; the other parts it queued are prepared here too (no workers yet)
    with rt.sessions() as session:
        parts = 1 + len(session.get(Campaign, campaign_id).prepare_plan or [])
    for part in range(1, parts):
        processing.prepare_part(rt, campaign_id, part)
    queues.queue(rt.redis, queues.SENDS).empty()  # the parts and lanes it queued; our processes send instead
    # The bare loop runs just before and just after ours and counts as the mean of the two: this machine's
    # speed drifts within minutes (the same bare loop gave 17,000 to 38,000/s in one session).
    bare_before = run_bare(stack, n)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)
    lanes = [context.Process(target=_lane_process, args=(rt.settings, campaign_id, lane, ready))
             for lane in range(2)]
    for process in lanes:
        process.start()
    wait_reported(rt, campaign_id, timeout=600)
    done = _last_report_stored(rt, campaign_id)  # wall clock, as the simulator's `at` (when sending began)
    for process in lanes:
        process.join(30)
    queues.queue(rt.redis, queues.SENDS).empty()  # each lane queued its successor on the way out
    records = stack.records(f"c{campaign_id}-")
    n = _prepared(rt, campaign_id)
    started = min(r["at"] for r in records)
    counts = _status(rt, campaign_id)[1]
    ours = n / (done - started)
    problems = _exactly_once(records, n, "ceiling")
    bare_after = run_bare(stack, n)
    bare = (bare_before + bare_after) / 2
    sent = max(r["at"] for r in records) - started
    print(f"ceiling: {n:,} messages in {done - started:.2f} s = {ours:.0f}/s through the whole path (the last one "
          f"handed over after {sent:.2f} s); bare loop {bare_before:.0f}/s before and {bare_after:.0f}/s after; "
          f"statuses {dict(counts)}", file=sys.stderr)
    return ours, bare, _duplicates_lost(records, n), problems


def _last_report_stored(rt: runtime.Runtime, campaign_id: int) -> float:
    """When the campaign's last delivery report was stored (its message's status_at), as a Unix time."""
    with rt.sessions() as session:
        last = session.scalar(select(func.max(Message.status_at)).where(Message.campaign_id == campaign_id))
    return as_utc(last).timestamp()


def run_bare(stack: Stack, n: int) -> float:
    """Posts n messages of the same shape in batches of BATCH to /send, one after another (no reports)."""
    tag = secrets.token_hex(4)
    batches = [[{"key": f"bare-{tag}-{i}", "to": f"+4860{i:07d}", "from": "BenchShop",
                 "text": TEXT.replace("{{ first_name | default('there') }}", "Ann")}
                for i in range(start, min(n, start + BATCH))] for start in range(0, n, BATCH)]
    started = time.monotonic()
    for batch in batches:
        stack.sim("POST", "/send", json={"messages": batch})
    return n / (time.monotonic() - started)


# --- throttled runs -----------------------------------------------------------------------------------------


def run_throttled(rt: runtime.Runtime, stack: Stack, workspace_id: int, per_hour: int,
                  seconds: float) -> tuple[dict[str, Any], list[str]]:
    """Sends a campaign sized to last `seconds` at `per_hour` through the workers; figures from the simulator."""
    n = max(2, round(per_hour * seconds / 3600) + 1)  # n messages span (n - 1) intervals
    campaign_id = new_campaign(rt, workspace_id, n, per_hour, f"Throttle {per_hour}")
    with rt.sessions() as session:
        actions.submit(rt, session, session.get(Campaign, campaign_id))
    wait_reported(rt, campaign_id, timeout=seconds * 2 + 120)
    records = stack.records(f"c{campaign_id}-")
    n = _prepared(rt, campaign_id)
    problems = _exactly_once(records, n, f"{per_hour}/h")
    times = sorted(r["mono"] for r in records)
    achieved = (len(times) - 1) / (times[-1] - times[0]) * 3600 if len(times) > 1 else 0.0
    burst = _max_window(times, 1.0) / (per_hour / 3600)
    figures = {"target_per_h": per_hour, "achieved_per_h": round(achieved),
               "rate_error": round(achieved / per_hour - 1, 4), "max_burst_ratio": round(burst, 3), "messages": n,
               "seconds": round(times[-1] - times[0], 1)}
    figures.update(_duplicates_lost(records, n))
    print(f"{per_hour:,}/h: {n:,} messages in {figures['seconds']} s, achieved {achieved:,.0f}/h "
          f"({figures['rate_error']:+.2%}), max burst {burst:.2f}x", file=sys.stderr)
    return figures, problems


def _max_window(times: Sequence[float], width: float) -> int:
    """The most of `times` (sorted) inside any window [t, t + width)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _duplicates_lost(records: Sequence[dict[str, Any]], n: int) -> dict[str, int]:
    keys = Counter(r["key"] for r in records)
    accepted = {r["key"] for r in records if r["status"] == "accepted"}
    return {"duplicates": sum(c - 1 for c in keys.values()), "lost": n - len(accepted)}


def _exactly_once(records: Sequence[dict[str, Any]], n: int, what: str) -> list[str]:
    found = _duplicates_lost(records, n)
    if found["duplicates"] or found["lost"]:
        return [f"{what}: {found['duplicates']} duplicates, {found['lost']} of {n} messages never accepted"]
    return []


def run(quick: bool, data_dir: Path, slow_per_h: int = SLOW_PER_H) -> tuple[dict[str, Any], list[str]]:
    stack = Stack(data_dir)
    settings = Settings.from_env(stack.env)
    migrations.upgrade(settings.sqlalchemy_url)
    rt = runtime.configure(settings)
    try:
        stack.start_services()
        fast_s, slow_s = (FAST_QUICK_S, SLOW_QUICK_S) if quick else (FAST_S, SLOW_S)
        ceiling_n = CEILING_QUICK_N if quick else CEILING_N
        fast_n = round(FAST_PER_H * fast_s / 3600) + 1
        slow_n = round(slow_per_h * slow_s / 3600) + 1
        workspace_id = setup_workspace(rt, stack, ceiling_n + fast_n + slow_n)
        load = os.getloadavg()[0]
        ours, bare, ceiling, problems = run_ceiling(rt, stack, workspace_id, ceiling_n)
        stack.start_workers()
        fast, fast_problems = run_throttled(rt, stack, workspace_id, FAST_PER_H, fast_s)
        slow, slow_problems = run_throttled(rt, stack, workspace_id, slow_per_h, slow_s)
        problems += fast_problems + slow_problems
    finally:
        stack.stop()
        runtime.reset()
        if not settings.redis_url:
            redisdb.stop_embedded(data_dir)
    figures = {
        **{k: fast[k] for k in ("target_per_h", "achieved_per_h", "rate_error", "max_burst_ratio")},
        "duplicates": fast["duplicates"] + slow["duplicates"],
        "lost": fast["lost"] + slow["lost"],
        "ceiling_per_s": round(ours),
        "ceiling_ratio": round(ours / bare, 2),
        "bare_per_s": round(bare),
        "ceiling_duplicates": ceiling["duplicates"],
        "ceiling_lost": ceiling["lost"],
        "messages": fast["messages"],
        "seconds": fast["seconds"],
        **{f"slow_{k}": slow[k] for k in ("target_per_h", "achieved_per_h", "rate_error", "max_burst_ratio",
                                          "messages", "seconds")},
        "goals": {"rate_error": GOAL_RATE_ERROR, "max_burst_ratio": GOAL_BURST, "ceiling_ratio": GOAL_CEILING_RATIO},
        "load_avg": round(load, 1),
        "database": rt.engine.dialect.name,
    }
    return figures, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Parses flags, runs the bench and prints the JSON result as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"{FAST_QUICK_S} s and {SLOW_QUICK_S} s runs, not {FAST_S} s and {SLOW_S} s")
    parser.add_argument("--slow-per-h", type=int, default=SLOW_PER_H,
                        help=f"the rate of the second throttled run (default {SLOW_PER_H:,}/h)")
    args = parser.parse_args(argv)
    if not 60 <= args.slow_per_h <= 200_000:
        parser.error("--slow-per-h must be between 60 and 200000")  # exit code 2
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        figures, problems = run(args.quick, Path(tmp), args.slow_per_h)
    for problem in problems:
        print(f"WARNING: {problem}", file=sys.stderr)
    print(f"{figures['target_per_h']:,}/h: achieved {figures['achieved_per_h']:,}/h ({figures['rate_error']:+.2%}), "
          f"burst {figures['max_burst_ratio']}x; {figures['slow_target_per_h']:,}/h: "
          f"{figures['slow_rate_error']:+.2%}, burst {figures['slow_max_burst_ratio']}x; duplicates "
          f"{figures['duplicates']}, lost {figures['lost']}; ceiling {figures['ceiling_per_s']}/s "
          f"({figures['ceiling_ratio']}x the bare loop)")
    print(json.dumps(figures))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
