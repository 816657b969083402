"""GraphQL API benchmarks (issue 13): the server on one core, the load generator on the other.

    .venv/bin/python tests/bench/bench_api.py [--seconds 30] [--subscribers 1000] [--sub-seconds 600] [--no-docs]

`make bench` runs it after the engine benchmarks (tests/bench/run.py) with the defaults: 30 s per query point
and the issue's 10 minutes of subscriptions (~13 minutes in all); pass --sub-seconds for a shorter look.

1. Queries with PostgreSQL behind the API: the orders query (100 rows) and the positions query, open loop at
   200 requests/s (latency p50/p99 from each request's scheduled send time, so a stall counts for every
   request it delayed), then closed loop with 8 requests in flight (the rate one server core sustains, and
   its latency). Data: the dense synthetic session of projections.testing (2,000 orders), projected into a
   fresh PostgreSQL schema, dropped afterwards.
2. Subscriptions: N websocket clients (bare asyncio protocols on uvloop, see `Subscriber`) subscribed to one
   followed session of the embedded log, one event appended every 100 ms (10 events/s to each client);
   event-to-client latency (append wall time to the wall time the message's bytes were read) p50/p99, each
   client's events checked for order and completeness, and the server's RSS sampled every second.
Both servers run as `taskset -c 0` subprocesses, the load generator under `taskset -c 1`. Each point also
records the server's CPU time per request (or its share of a core): on a shared machine the latencies follow
the other load, the CPU cost much less.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SESSION = "bench-api"
ORDERS = "query($s: String!) { orders(session: $s, first: 100) { edges { node { orderId status venue side quantity " \
    "filledQuantity avgFillPrice fees createdNs } } pageInfo { endCursor } } }"  # fmt: skip
POSITIONS = "query($s: String!) { positions(session: $s) { venue asset quantity avgCost realizedPnl fees } }"


def serve(home: str, schema: str | None, port: int) -> None:
    """The server process: read models in PostgreSQL `schema` (or embedded SQLite), feed from the SQLite log."""
    import uvicorn

    from adapters.api.app import create_app
    from adapters.api.heap import freeze_startup_heap
    from adapters.api.jobs import BacktestJobs
    from adapters.api.keys import KeyStore
    from adapters.api.services import ApiServices
    from adapters.entrypoints.api_commands import UVICORN, read_engine, run_backtest_job
    from adapters.entrypoints.commands import open_log
    from adapters.log_feed import LogFeed
    from adapters.settings import Settings
    from projections.queries import SqlReadModels
    from projections.series_queries import SqlSeries

    settings = Settings(home=Path(home))
    url = Settings().pg_dsn if schema else f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}"
    engine = read_engine(url, schema=schema)
    services = ApiServices(read_models=SqlReadModels(engine), series=SqlSeries(engine),
                           open_log=lambda: open_log(settings), feed=LogFeed(settings.event_log_path),
                           keys=KeyStore(settings.api_keys_path), jobs=BacktestJobs(run_backtest_job),
                           target="bench")  # fmt: skip
    app = create_app(services)
    freeze_startup_heap()  # as `cse serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN, log_level="warning",
                access_log=False)  # fmt: skip


def start_server(home: Path, schema: str | None, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve", str(home), schema or "",
                             str(port)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def pct(values: Sequence[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def _session(key: str, connections: int) -> Any:
    """The load generator's HTTP client: aiohttp (httpx cost the generator more CPU per request than the server
    spent answering it, so on a busy machine the generator, not the server, set the rate)."""
    import aiohttp

    return aiohttp.ClientSession(headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
                                 connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=30))  # fmt: skip


async def _post(client: Any, url: str, body: bytes) -> bool:
    """One request; True when answered 200 without GraphQL errors."""
    async with client.post(url, data=body) as r:
        answer = await r.read()
    return bool(r.status == 200 and b'"errors"' not in answer)


async def open_loop(url: str, key: str, query: str, rate: float, seconds: float) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": {"s": SESSION}}).encode()
    latencies: list[float] = []
    errors = 0
    async with _session(key, 64) as client:

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                errors += not await _post(client, url, body)
            except Exception:  # a timeout or a refused connection counts as an error, the run goes on
                errors += 1
            latencies.append((time.perf_counter() - scheduled) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # latency from the time the request was due, not from when it went out: a stall of the server
            # (or of this generator) counts for every request it delayed (no coordinated omission)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    return {"rate": rate, "n": len(latencies), "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99),
            "errors": errors}  # fmt: skip


async def closed_loop(url: str, key: str, query: str, in_flight: int, seconds: float) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": {"s": SESSION}}).encode()
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    async with _session(key, in_flight) as client:

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    errors += not await _post(client, url, body)
                except Exception:  # as in the open loop: counted, the run goes on
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(loop() for _ in range(in_flight)))
    return {"rate": len(latencies) / seconds, "n": len(latencies), "p50_ms": pct(latencies, 50),
            "p99_ms": pct(latencies, 99), "errors": errors}  # fmt: skip


def with_cpu(pid: int, run: Any) -> dict[str, Any]:
    """Run a load; add the server's CPU milliseconds per request (what one core's capacity follows from,
    whatever else the machine is doing) and the load average meanwhile."""
    before, mine, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
    result: dict[str, Any] = asyncio.run(run)
    return {
        **result,
        "server_cpu_ms": (cpu_seconds(pid) - before) * 1000 / max(result["n"], 1),
        "generator_cpu_share": (time.process_time() - mine) / (time.perf_counter() - started),
        "load_average": os.getloadavg()[0],
    }


def queries(seconds: float) -> dict[str, Any]:
    from sqlalchemy import text

    from adapters.api.keys import KeyStore, Role
    from adapters.settings import Settings
    from adapters.sqlite_event_log import SqliteEventLog
    from projections.projector import project
    from projections.schema import make_engine, migrate
    from projections.testing import build_sample_session

    home = Path(tempfile.mkdtemp(prefix="bench-api-"))
    settings = Settings(home=home)
    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    with SqliteEventLog(settings.event_log_path) as log:
        build_sample_session(log, SESSION, orders=2_000)

    async def setup() -> None:
        engine = make_engine(Settings().pg_dsn, schema=schema)
        await migrate(engine, schema=schema)
        with SqliteEventLog(settings.event_log_path) as log:
            await project(engine, log, SESSION)
        await engine.dispose()

    async def drop() -> None:
        engine = make_engine(Settings().pg_dsn)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()

    try:
        asyncio.run(setup())
    except OSError as exc:
        raise SystemExit(
            f"bench_api: PostgreSQL at CSE_PG_DSN unreachable ({exc}); start it with `make services`"
        ) from exc
    key = KeyStore(settings.api_keys_path).create(Role.viewer, "bench")
    proc = start_server(home, schema, 18_731)
    url = "http://127.0.0.1:18731/graphql"
    out: dict[str, Any] = {}
    try:
        for name, query in (("orders (100 rows)", ORDERS), ("positions", POSITIONS)):
            asyncio.run(open_loop(url, key, query, 50, 2))  # warm-up
            out[name] = {"200/s": with_cpu(proc.pid, open_loop(url, key, query, 200, seconds)),
                         "max": with_cpu(proc.pid, closed_loop(url, key, query, 8, seconds))}  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
        asyncio.run(drop())
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Subscriber(asyncio.Protocol):
    """One websocket subscriber on a bare asyncio protocol (the load generator runs 1,000 of them on one core:
    aiohttp's client cost ~29 us per message there, so an event's 1,000 messages waited up to ~30 ms in the
    generator's own backlog and the measurement was partly the generator). Frames are parsed as the bytes
    arrive and each message is stamped with the wall time its bytes were read; every `next` is still parsed
    (JSON) and checked against the events appended, in order: a missing, repeated or reordered event counts
    as a defect, not a delivery."""

    def __init__(self, key: str, query: str, appended: list[int], latencies: Any) -> None:
        self.key, self.query, self.appended, self.latencies = key, query, appended, latencies
        self.buffer = bytearray()
        self.upgraded = False
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None
        self.received = 0
        self.defects = 0
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.nonce = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {self.nonce}\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode())  # fmt: skip

    def send(self, message: dict[str, Any], opcode: int = 1) -> None:
        self.transport.write(client_frame(json.dumps(message).encode(), opcode))

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = bytes(self.buffer).partition(b"\r\n\r\n")
            if not sep:
                return
            accept = base64.b64encode(hashlib.sha1((self.nonce + WS_GUID).encode()).digest())
            if not head.startswith(b"HTTP/1.1 101") or accept not in head:
                raise RuntimeError(f"websocket upgrade refused: {head[:200]!r}")
            self.upgraded, self.buffer = True, bytearray(rest)
            self.send({"type": "connection_init", "payload": {"apiKey": self.key}})
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            size, at = second & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, at = int.from_bytes(self.buffer[2:4], "big"), 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, at = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < at + size:
                return
            payload = bytes(self.buffer[at : at + size])
            del self.buffer[: at + size]
            if second & 0x80 or not first & 0x80:
                raise RuntimeError("a server frame must be unmasked and whole (no fragments are sent)")
            opcode = first & 0x0F
            if opcode == 1:
                self.message(orjson.loads(payload), now)
            elif opcode == 9:
                self.transport.write(client_frame(payload, 10))  # pong
            elif opcode == 8:
                self.closed = True

    def message(self, data: dict[str, Any], now: int) -> None:
        kind = data.get("type")
        if kind == "next":
            event_time = int(data["payload"]["data"]["events"]["eventTimeNs"])
            if self.received < len(self.appended) and self.appended[self.received] == event_time:
                self.received += 1
                self.latencies.append((now - event_time) / 1e6)
            else:
                self.defects += 1
        elif kind == "connection_ack":
            self.acked.set_result(None)
            self.send({"id": "1", "type": "subscribe", "payload": {"query": self.query,
                                                                   "variables": {"s": SESSION}}})  # fmt: skip
        else:
            self.defects += 1  # an error, a complete or anything else is not what a follower should get

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.acked.done():
            self.acked.set_exception(RuntimeError(f"connection lost before the ack: {exc}"))


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(payload: bytes, opcode: int) -> bytes:
    """A masked, whole frame (RFC 6455 5.2: a client masks every frame)."""
    mask = os.urandom(4)
    n = len(payload)
    size = bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    head = bytes((0x80 | opcode,)) + size
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def subscribers(
    port: int, key: str, n: int, seconds: float, log_path: Path, pid: int
) -> dict[str, Any]:
    from adapters.sqlite_event_log import SqliteEventLog
    from application.operator_commands import append_operator_command
    from domain.events import StartStrategy

    latencies = array("d")
    appended: list[int] = []
    query = 'subscription($s: String!) { events(session: $s, types: ["command.*"]) { eventTimeNs type } }'
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(n):
        _, client = await loop.create_connection(lambda: Subscriber(key, query, appended, latencies), "127.0.0.1",
                                                 port)  # fmt: skip
        await asyncio.wait_for(client.acked, 10)
        clients.append(client)
        if len(clients) % 100 == 0:
            print(f"{len(clients)} subscribers connected", file=sys.stderr)
    await asyncio.sleep(1)  # the last subscriptions registered before the first event
    gc.collect()
    gc.freeze()  # the generator's own heap: a full collection of it would stall every stamp behind it
    rss = [rss_mb(pid)]
    cpu0 = (cpu_seconds(pid), time.process_time())
    with SqliteEventLog(log_path) as log:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            t = time.time_ns()
            append_operator_command(log, SESSION, t, lambda env: StartStrategy(envelope=env, strategy_id="s",
                                                                                 operator="bench"))  # fmt: skip
            appended.append(t)
            if len(appended) % 10 == 0:
                rss.append(rss_mb(pid))
            await asyncio.sleep(max(0.0, start + len(appended) * 0.1 - time.perf_counter()))
    await asyncio.sleep(2)
    server_cpu, generator_cpu = cpu_seconds(pid) - cpu0[0], time.process_time() - cpu0[1]
    for client in clients:
        client.transport.close()
    sent = len(appended)
    return {"subscribers": n, "events_sent": sent, "deliveries": sum(c.received for c in clients),
            "defects": sum(c.defects for c in clients), "dropped": sum(c.closed for c in clients),
            "expected": sent * n, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "rss_start_mb": rss[0],
            "rss_mid_mb": rss[len(rss) // 2], "rss_end_mb": rss[-1], "rss_max_mb": max(rss),
            "seconds": seconds, "server_cpu_share": server_cpu / (seconds + 2),
            "generator_cpu_share": generator_cpu / (seconds + 2)}  # fmt: skip


def subscriptions(n: int, seconds: float) -> dict[str, Any]:
    import uvloop

    from adapters.api.keys import KeyStore, Role
    from adapters.settings import Settings
    from adapters.sqlite_event_log import SqliteEventLog
    from tests.api_support import open_live_session

    home = Path(tempfile.mkdtemp(prefix="bench-api-sub-"))
    settings = Settings(home=home)
    with SqliteEventLog(settings.event_log_path) as log:
        open_live_session(log, SESSION)  # operator commands go to a live session, not a finished run
    key = KeyStore(settings.api_keys_path).create(Role.viewer, "bench")
    proc = start_server(home, None, 18_732)
    try:
        # uvloop: the event loop a client of 1,000 connections on one core would use (asyncio's own costs
        # several microseconds more per message received)
        return uvloop.run(subscribers(18_732, key, n, seconds, settings.event_log_path, proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)


START, END = "<!-- bench:api:start -->", "<!-- bench:api:end -->"
DOCS = REPO / "docs" / "benchmarks.md"
QUERY_P99_MS, SUB_P99_MS = 20.0, 50.0


def rss_flat(sub: dict[str, Any]) -> bool:
    """Flat: the second half of the run adds under 2 % (or 4 MB) to the RSS it had half-way."""
    return sub["rss_end_mb"] - sub["rss_mid_mb"] <= max(0.02 * sub["rss_mid_mb"], 4.0)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [f"`python tests/bench/bench_api.py --seconds {args.seconds:g} --sub-seconds {args.sub_seconds:g}` - "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores (shared), load average at the end "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min).", "",
             "| measure | result | target | met? |", "|---|---|---|---|"]  # fmt: skip
    for name, point in results.get("queries", {}).items():
        fixed, most = point["200/s"], point["max"]
        met = fixed["p99_ms"] < QUERY_P99_MS and not fixed["errors"]
        lines.append(f"| {name} at 200 req/s ({fixed['n']:,} requests) | p50 {fixed['p50_ms']:.1f} ms, p99 "
                     f"{fixed['p99_ms']:.1f} ms, {fixed['errors']} errors; server {fixed['server_cpu_ms']:.2f} ms "
                     f"CPU per request | p99 < {QUERY_P99_MS:g} ms | {'yes' if met else '**no**'} |")  # fmt: skip
        lines.append(f"| {name}, highest rate of the server's core (8 in flight) | {most['rate']:.0f} req/s, p50 "
                     f"{most['p50_ms']:.1f} ms, p99 {most['p99_ms']:.1f} ms; {most['server_cpu_ms']:.2f} ms CPU per "
                     f"request = {1000 / most['server_cpu_ms']:.0f} req/s on a core of its own; load generator "
                     f"{100 * most['generator_cpu_share']:.0f} % of a core | - | - |")  # fmt: skip
    sub = results.get("subscriptions")
    if sub is None:
        return "\n".join(lines) + "\n"
    lost = sub["expected"] - sub["deliveries"]
    lines += [f"| {sub['subscribers']:,} subscribers x 10 events/s, {sub['seconds']:g} s | {sub['deliveries']:,} of "
              f"{sub['expected']:,} delivered in order ({lost:,} lost, {sub['defects']:,} out of order or unexpected, "
              f"{sub['dropped']:,} clients dropped); p50 {sub['p50_ms']:.1f} ms, p99 {sub['p99_ms']:.1f} ms; "
              f"server {100 * sub['server_cpu_share']:.0f} % of a core, load generator "
              f"{100 * sub['generator_cpu_share']:.0f} % | p99 < {SUB_P99_MS:g} ms | "
              f"{'yes' if sub['p99_ms'] < SUB_P99_MS and not lost and not sub['defects'] else '**no**'} |",
              f"| server RSS over that run | start {sub['rss_start_mb']:.1f} MB, half-way {sub['rss_mid_mb']:.1f} MB, "
              f"end {sub['rss_end_mb']:.1f} MB, max {sub['rss_max_mb']:.1f} MB | flat | "
              f"{'yes' if rss_flat(sub) else '**no**'} |"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", nargs=3, metavar=("HOME", "SCHEMA", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30, help="seconds of each query point (default 30)")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument(
        "--sub-seconds",
        type=float,
        default=600,
        help="seconds of the subscription run (default 600: the issue's 10 minutes)",
    )
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--skip-subscriptions", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    if args.serve:
        home, schema, port = args.serve
        serve(home, schema or None, int(port))
        return
    os.sched_setaffinity(0, {1})  # the load generator on the other core
    results: dict[str, Any] = {}
    if not args.skip_queries:
        results["queries"] = queries(args.seconds)
    if not args.skip_subscriptions:
        results["subscriptions"] = subscriptions(args.subscribers, args.sub_seconds)
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2) if isinstance(v, float) else str(v)),
          file=sys.stderr)  # fmt: skip
    text = report(results, args)
    print(text)
    if not args.no_docs and not args.skip_queries and not args.skip_subscriptions:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from docs_section import write_section

        write_section(DOCS, f"{START}\n{text}{END}", START, END, "GraphQL API")
        print(f"results written to {DOCS.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
