"""The carrier simulator: a local HTTP service that takes sends like a carrier and posts delivery reports back.

Endpoints (JSON; all but /healthz need `Authorization: Bearer <secret>` when a secret is set):

- `POST /send` `{"callback_url", "messages": [{"key", "to", "from", "text"}]}` →
  `{"results": [{"key", "id", "status": "accepted"}]}`; ids are 32 hex digits ordered by time, as Sinch's
  ULID batch ids are (12 of Unix milliseconds, then 20 random); a bad number is `"status": "rejected"` with
  `"error": {"code", "message"}`. A key seen before returns its first id, counts as a duplicate, and is never
  delivered again.
- `GET /stats` → `{"received", "unique", "duplicates", "rejected", "reports_sent", ...}`.
- `GET /log?after=<n>&limit=<m>` → `{"records": [{"n", "key", "id", "to", "status", "at", "mono"}], "next"}`.
- `POST /config` `{"delay", "mix", "click_rate", "reply_rate"}` changes them at once; `POST /reset` forgets all.

After `delay` seconds each accepted message gets a report, its status drawn from `mix` (seeded), posted in
batches of up to 500, `callback_workers` (4) at once, to its callback URL as
`{"reports": [{"id", "key", "status", "code", "at"}]}` and signed
`X-Simulator-Signature: t=<unix>,v1=<hex hmac-sha256(secret, "t.body")>` (verified by webhooks/signing.py).
Codes: DELIVERED 0, UNDELIVERED 27 (absent subscriber), EXPIRED 408 (validity period over), ERROR 1 (unknown
subscriber). Delivered messages may also click their links and reply (`click_rate`, `reply_rate`).
Every received message is kept in memory and appended to `<data_dir>/received.jsonl`, which is read back on
start so de-duplication survives a restart (`/reset` moves it aside as `received-<ns>.jsonl`).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import re
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from core import simulator_config
from core.simulator_config import CODES, SimulatorConfig, arguments, parse_mix
from core.simulator_config import DEFAULT_MIX as DEFAULT_MIX  # re-exported, so core.simulator keeps its names
from core.simulator_config import STATUSES as STATUSES

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
URL = re.compile(r"https?://[^\s<>\"']+")
REPLIES = ("STOP", "YES", "Thanks!", "More info please")
REPORT_BATCH = 500  # reports per callback POST
CALLBACK_TIMEOUT_S = 10.0
RETRY_AFTER_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # pauses between tries of a failed callback; then it is dropped
MAX_BODY_BYTES = 32 * 1024 * 1024  # one /send request
Task = tuple[float, int, str, str, Any, int]  # due (monotonic s), sequence, kind, target URL, payload, try


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The X-Simulator-Signature value; the same scheme webhooks/signing.py verifies."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _problem(code: str, message: str, status: int) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


class Simulator:
    """The service's state and its WSGI app (call it with environ, start_response)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = replace(config, mix=parse_mix(config.mix))
        self.rng = random.Random(config.seed)
        self.id_rng = random.Random()  # ids stay unique across restarts and runs of the same seed
        self.lock = threading.Condition()
        self.keys: dict[str, str] = {}  # key → id
        self.records: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.pending: list[Task] = []  # a heap, soonest first
        self.seq = 0
        self.stopping = False
        self.http = requests.Session()
        self.file: TextIO | None = None
        if config.data_dir is not None:
            path = Path(config.data_dir) / "received.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._restore(path)
            self.file = path.open("a", encoding="utf-8")
        self.posters = ThreadPoolExecutor(max(1, config.callback_workers), thread_name_prefix="simulator-callbacks")
        self.worker = threading.Thread(target=self._deliver_loop, name="simulator-reports", daemon=True)
        self.worker.start()

    # --- HTTP -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        return self._route(request)(environ, start_response)

    def _route(self, request: Request) -> Response:
        if request.path == "/healthz":
            return _json({"status": "ok"})
        secret = self.config.secret
        if secret and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {secret}"):
            return _problem("unauthorized", "send 'Authorization: Bearer <secret>'", 401)
        if request.method == "GET" and request.path == "/stats":
            return _json(self.stats())
        if request.method == "GET" and request.path == "/log":
            return _json(self.log(request.args.get("after", 0, int), request.args.get("limit", 10000, int)))
        actions = {"/send": self.send, "/config": self.configure, "/reset": lambda _: self.reset()}
        if request.method != "POST" or request.path not in actions:
            return _problem("not_found", f"no {request.method} {request.path}", 404)
        try:
            data = json.loads(request.get_data() or b"{}")
            return _json(actions[request.path](data))
        except (ValueError, TypeError, KeyError) as exc:
            return _problem("bad_request", str(exc), 400)

    # --- actions --------------------------------------------------------------------------------------------

    def send(self, data: Any) -> dict[str, Any]:
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ValueError("'messages' must be a list of objects")
        results, lines, reports = [], [], []
        wall, mono = time.time(), time.monotonic()
        callback_url = data.get("callback_url")
        callback_url = callback_url if isinstance(callback_url, str) and callback_url else None
        with self.lock:
            for message in messages:
                result = self._accept(message, reports if callback_url else None, mono)
                results.append(result)
                record = {"n": len(self.records), "key": result["key"], "id": result.get("id"),
                          "to": message.get("to"), "status": "duplicate" if result.get("duplicate") else
                          result["status"], "at": wall, "mono": mono}
                self.records.append(record)
                lines.append(json.dumps(record))
            if self.file is not None and lines:
                self.file.write("\n".join(lines) + "\n")
                self.file.flush()
            if reports:  # one task for the request's reports: a heap entry each cost more than the sending
                self._schedule(mono + self.config.delay, "reports", callback_url, reports)
            self.lock.notify()
        return {"results": results}

    def _accept(self, message: dict[str, Any], reports: list[dict[str, Any]] | None, mono: float) -> dict[str, Any]:
        """Takes one message; its delivery report, if it gets one, is added to `reports`."""
        key, to = str(message.get("key") or ""), str(message.get("to") or "")
        self.counts["received"] += 1
        if key in self.keys:
            self.counts["duplicates"] += 1
            return {"key": key, "id": self.keys[key], "status": "accepted", "duplicate": True}
        problem = ("missing_key", "every message needs a key") if not key else None
        if problem is None and not E164.match(to):
            problem = ("invalid_number", f"{to!r} is not an E.164 number (+ and 7 to 15 digits)")
        if problem is None and not str(message.get("text") or ""):
            problem = ("empty_text", "the message text is empty")
        if problem is not None:
            self.counts["rejected"] += 1
            return {"key": key, "status": "rejected", "error": {"code": problem[0], "message": problem[1]}}
        self.keys[key] = message_id = self._new_id()
        status = self._draw()
        if reports is not None:
            reports.append({"id": message_id, "key": key, "status": status, "code": CODES[status]})
        if status == "DELIVERED":
            self._maybe_engage(message, mono + self.config.delay)
        return {"key": key, "id": message_id, "status": "accepted"}

    def _new_id(self) -> str:
        """A time-ordered id: a gateway's random ids (Twilio's) scatter the index that delivery reports are
        looked up in, one page written per message; Sinch's and this one's are ordered like the messages."""
        return f"{time.time_ns() // 1_000_000:012x}{self.id_rng.getrandbits(80):020x}"

    def _draw(self) -> str:
        statuses, cum_weights = self.draws
        return self.rng.choices(statuses, cum_weights=cum_weights)[0]  # the same draws as weights=, less work

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    @config.setter
    def config(self, config: SimulatorConfig) -> None:
        self._config = config
        self.draws = (list(config.mix), list(itertools.accumulate(config.mix.values())))

    def _maybe_engage(self, message: dict[str, Any], due: float) -> None:
        cfg = self.config
        if cfg.click_base and cfg.click_rate and self.rng.random() < cfg.click_rate:
            for link in URL.findall(str(message.get("text") or "")):
                self._schedule(due + self.rng.uniform(0, cfg.delay), "click", link, None)
        if cfg.inbound_url and cfg.reply_rate and self.rng.random() < cfg.reply_rate:
            reply = {"type": "mo", "from": message.get("to"), "to": message.get("from"),
                     "text": self.rng.choice(REPLIES)}
            self._schedule(due + self.rng.uniform(0, cfg.delay), "reply", cfg.inbound_url, reply)

    def _schedule(self, due: float, kind: str, target: str, payload: Any, attempt: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.pending, (due, self.seq, kind, target, payload, attempt))

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"received": self.counts["received"], "unique": len(self.keys),
                    "duplicates": self.counts["duplicates"], "rejected": self.counts["rejected"],
                    "reports_sent": self.counts["reports_sent"], "reports_failed": self.counts["reports_failed"],
                    "reports_pending": sum(len(item[4]) for item in self.pending if item[2] == "reports"),
                    "clicks": self.counts["clicks"], "replies": self.counts["replies"]}

    def log(self, after: int = 0, limit: int = 10000) -> dict[str, Any]:
        after, limit = max(0, after), max(1, min(limit, 100_000))
        with self.lock:
            records = self.records[after : after + limit]
        return {"records": records, "next": after + len(records)}

    def configure(self, changes: Any) -> dict[str, Any]:
        changes = simulator_config.check_changes(changes)
        with self.lock:
            self.config = replace(self.config, **changes)
            cfg = self.config
        return simulator_config.changeable(cfg)

    def reset(self) -> dict[str, str]:
        with self.lock:
            self.keys.clear()
            self.records.clear()
            self.counts.clear()
            self.pending.clear()
            if self.file is not None:  # the old log is kept beside, renamed; the new one starts empty
                path = Path(self.file.name)
                self.file.close()
                path.rename(path.with_name(f"received-{time.time_ns()}.jsonl"))
                self.file = path.open("a", encoding="utf-8")
        return {"status": "reset"}

    def close(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify()
        self.worker.join(timeout=5)
        self.posters.shutdown(wait=True, cancel_futures=True)  # posts under way finish; queued ones are dropped
        if self.file is not None:
            self.file.close()
        self.http.close()

    def _restore(self, path: Path) -> None:
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                record["n"] = len(self.records)
                self.records.append(record)
                self.counts["received"] += 1
                if record.get("status") == "accepted":
                    self.keys[record["key"]] = record["id"]
                elif record.get("status") == "duplicate":
                    self.counts["duplicates"] += 1
                elif record.get("status") == "rejected":
                    self.counts["rejected"] += 1

    # --- outgoing: reports, clicks, replies -----------------------------------------------------------------

    def _deliver_loop(self) -> None:
        while True:
            with self.lock:
                while not self.stopping and (not self.pending or self.pending[0][0] > time.monotonic()):
                    self.lock.wait(self.pending[0][0] - time.monotonic() if self.pending else None)
                if self.stopping:
                    return
                now = time.monotonic()
                due: list[Task] = []
                while self.pending and self.pending[0][0] <= now and len(due) < 100:
                    due.append(heapq.heappop(self.pending))
            self._run(due)

    def _run(self, due: list[Task]) -> None:
        reports: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for _, _, kind, target, payload, attempt in due:
            if kind == "reports":
                reports[(target, attempt)].extend(payload)
            elif kind == "click":
                self._click(target)
            elif self._post_signed(target, {**payload, "at": _now_iso()}):
                self._count("replies")
        for (url, attempt), items in reports.items():
            for start in range(0, len(items), REPORT_BATCH):  # queued: `callback_workers` post them side by side
                self.posters.submit(self._post_reports, url, items[start : start + REPORT_BATCH], attempt)

    def _count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def _post_signed(self, url: str, data: Any) -> bool:
        body = json.dumps(data).encode()
        headers = {"Content-Type": "application/json", "X-Simulator-Signature": sign(self.config.secret, body)}
        try:
            response = self.http.post(url, data=body, headers=headers, timeout=CALLBACK_TIMEOUT_S)
        except requests.RequestException as exc:
            log.info("simulator: POST to %s failed: %s", urlsplit(url).netloc, type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.info("simulator: POST to %s answered %s", urlsplit(url).netloc, response.status_code)
        return response.status_code < 300

    def _post_reports(self, url: str, items: list[dict[str, Any]], attempt: int) -> None:
        at = _now_iso()
        if self._post_signed(url, {"reports": [{**item, "at": at} for item in items]}):
            self._count("reports_sent", len(items))
            return
        with self.lock:
            if attempt < len(RETRY_AFTER_S):
                self._schedule(time.monotonic() + RETRY_AFTER_S[attempt], "reports", url, items, attempt + 1)
                self.lock.notify()
            else:
                self.counts["reports_failed"] += len(items)

    def _click(self, link: str) -> None:
        """Opens a link the way a phone would, but at `click_base`, keeping the path and the original Host."""
        parts = urlsplit(link)
        target = str(self.config.click_base).rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query
                                                                                    else "")
        try:
            self.http.get(target, headers={"Host": parts.netloc, "User-Agent": "smsconnect-simulator"},
                          allow_redirects=False, timeout=CALLBACK_TIMEOUT_S)
            self._count("clicks")
        except requests.RequestException as exc:
            log.info("simulator: click on %s failed: %s", parts.netloc, type(exc).__name__)


class QuietHandler(WSGIRequestHandler):
    """Logs errors only: a log line per request would cost more than the request at bench rates."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


@dataclass
class SimulatorHandle:
    url: str
    simulator: Simulator
    server: BaseWSGIServer
    thread: threading.Thread

    def stats(self) -> dict[str, int]:
        return self.simulator.stats()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        self.simulator.close()


def start_in_thread(config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                    **options: Any) -> SimulatorHandle:
    """Starts the simulator in daemon threads of this process; `port=0` picks a free port (see `.url`).

    `options` are SimulatorConfig fields, e.g. `start_in_thread(delay=0.1, secret="s", seed=1)`.
    """
    simulator = Simulator(replace(config or SimulatorConfig(), **options))
    server = make_server(host, port, simulator, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="simulator-http", daemon=True)
    thread.start()
    return SimulatorHandle(f"http://{host}:{server.port}", simulator, server, thread)


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Waits for a simulator started as a subprocess to answer /healthz; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url.rstrip('/')}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the simulator at {url} did not answer within {timeout} s")


def main(argv: list[str] | None = None) -> None:
    """Runs the simulator in the foreground until SIGINT/SIGTERM: `python -m core.simulator --port 8026 ...`."""
    args = arguments().parse_args(argv)
    simulator = Simulator(simulator_config.from_arguments(args))
    server = make_server(args.host, args.port, simulator, threaded=True, request_handler=QuietHandler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"simulator listening on http://{args.host}:{server.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator.close()


if __name__ == "__main__":
    main()
