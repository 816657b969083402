"""Kafka path benchmark on the local broker: the Faust worker (`cse worker`, a real process) between the md
topic and the derived topics, against a plain confluent-kafka consume-and-produce passthrough (the ceiling).

    .venv/bin/python tests/bench/bench_streams.py [--rates 500,1000,5000] [--seconds 30] [--no-docs]

1. passthrough: one confluent-kafka consumer + producer copying the preloaded md topic to another topic.
2. sustained: the md topic preloaded with the sample (spot + USD-M BTCUSDT, 42,864 ticks); `cse worker`
   drains it; rate between its first and last offset commit (commits every 1,000 inputs), startup excluded;
   one run per worker batch size (`--batch-sizes`, setting CSE_WORKER_BATCH_SIZE).
3. latency at fixed rates: `cse worker` running and assigned; ticks produced at R/s (linger 0); a consumer of
   `{prefix}.commands` (and the other derived topics) takes (time the output is consumed) - (time its
   causing tick was produced), matched by the output's correlation id = the worker's id of the tick.
   Wall clock (time.time) of this process only, benchmark-side.
4. profile: cProfile of the Faust app in-process draining the preloaded topic (per-message path).
Writes the tables between the `bench:streams` markers of docs/benchmarks.md (unless --no-docs).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from docs_section import write_section  # noqa: E402  (this folder: the script's own)

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues  # noqa: E402
from adapters.importers.binance_ws import import_binance_ws  # noqa: E402
from adapters.sqlite_event_log import SqliteEventLog  # noqa: E402
from application.session_run import market_data_streams, merged_inputs  # noqa: E402
from domain.events.envelope import input_event_id  # noqa: E402
from streams.serialization import CONTROL_END_OF_SESSION, H_CONTROL, H_SESSION, header_map, to_message  # noqa: E402
from streams.topics import TopicConfig, Topics, create_topics  # noqa: E402
from streams.worker import default_target  # noqa: E402

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CONFIG = SAMPLES / "spread-demo.toml"
CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
SESSION = "bench-kafka"
CSE = str(Path(sys.executable).parent / "cse")
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench:streams:start -->", "<!-- bench:streams:end -->"

WARMUP_S = 2
"""Latency: outputs of the ticks of the first seconds are not counted (steady state, not the worker's start)."""
Msg = tuple[bytes, bytes, list[tuple[str, bytes]], str]  # value, key, headers, worker's id of the tick


def load_messages(workdir: Path) -> list[Msg]:
    log = SqliteEventLog(workdir / "events.sqlite")
    import_binance_ws(log, SESSION, CAPTURES, code_version=lambda: "bench", echo=None)
    target = default_target(load_run_config(CONFIG))(SESSION)
    out: list[Msg] = []
    for merged in merged_inputs(log, SESSION, market_data_streams(log, SESSION)):
        stored = merged.item[1]
        msg = to_message(SESSION, stored, "default")
        sequence = json.loads(stored.record.payload)["envelope"]["sequence"]
        out.append(
            (msg.value, msg.key, list(msg.headers), str(input_event_id(target, merged.stream, sequence)))
        )
    return out


def fresh_topics(partitions: int = 1) -> Topics:
    prefix = f"cse-bench-{uuid.uuid4().hex[:8]}"
    create_topics(BOOTSTRAP, TopicConfig(prefix=prefix, partitions=partitions))
    return Topics(prefix)


def producer(**overrides: Any) -> Producer:
    return Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 20, "batch.size": 1_048_576, "queue.buffering.max.messages": 500_000,
                     **overrides})  # fmt: skip


def produce_all(prod: Producer, topic: str, messages: list[Msg]) -> None:
    for value, key, headers, _ in messages:
        while True:
            try:
                prod.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                prod.poll(0.05)
        prod.poll(0)
    prod.produce(topic, b"", messages[0][1], headers=[(H_CONTROL, CONTROL_END_OF_SESSION),
                                                     (H_SESSION, SESSION.encode())])  # fmt: skip
    assert prod.flush(60) == 0


def end_offset(topic: str) -> int:
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "cse-bench-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)[1]
    finally:
        c.close()


def committed(group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=15)[0].offset
    finally:
        c.close()


class Worker:
    def __init__(self, topics: Topics, log_path: Path, batch_size: int | None = None) -> None:
        self.app_id = f"{topics.prefix}-kernel"
        env = {**os.environ, "CSE_KAFKA_BOOTSTRAP": BOOTSTRAP, "PYTHONUNBUFFERED": "1"}
        if batch_size is not None:
            env["CSE_WORKER_BATCH_SIZE"] = str(batch_size)
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen([CSE, "worker", "--config", str(CONFIG), "--prefix", topics.prefix,
                                      "--app-id", self.app_id, "--loglevel", "warning"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def bench_passthrough(messages: list[Msg]) -> dict[str, Any]:
    topics = fresh_topics()
    out_topic = f"{topics.prefix}.passthrough"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(out_topic, 1, 1)])[out_topic].result(timeout=30)
    produce_all(producer(), topics.md, messages)
    total = end_offset(topics.md)
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"{topics.prefix}-pt",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})  # fmt: skip
    prod = producer(**{"linger.ms": 5})
    consumer.assign([TopicPartition(topics.md, 0, OFFSET_BEGINNING)])
    started, done = 0.0, 0
    while done < total:
        for msg in consumer.consume(1_000, 1.0):
            if msg.error():
                continue
            if not done:
                started = time.perf_counter()  # from the first message: connection setup excluded
            while True:
                try:
                    prod.produce(out_topic, msg.value(), msg.key(), headers=msg.headers())
                    break
                except BufferError:
                    prod.poll(0.05)
            done += 1
        prod.poll(0)
        consumer.commit(asynchronous=True)
    prod.flush(60)
    seconds = time.perf_counter() - started
    consumer.close()
    return {"messages": total, "seconds": seconds, "rate": total / seconds}


def bench_sustained(messages: list[Msg], workdir: Path, batch_size: int | None = None) -> dict[str, Any]:
    topics = fresh_topics()
    produce_all(producer(), topics.md, messages)
    total = end_offset(topics.md)
    started = time.perf_counter()
    worker = Worker(topics, workdir / "sustained.log", batch_size)
    points: list[tuple[float, int]] = []
    try:
        deadline = started + 600
        while time.perf_counter() < deadline:
            offset = committed(worker.app_id, topics.md)
            now = time.perf_counter()
            if offset > 0 and (not points or offset > points[-1][1]):
                points.append((now, offset))
            if offset >= total:
                break
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died: {(workdir / 'sustained.log').read_text()[-2000:]}")
            time.sleep(0.1)
    finally:
        worker.stop()
    print("  commits (s, offset):", [(round(t - started, 2), c) for t, c in points], flush=True)
    # The final commit can wait for the commit interval (2.8 s): measure up to the last one before it.
    inner = points[:-1] if len(points) > 2 else points
    (t0, c0), (t1, c1) = inner[0], inner[-1]
    return {"ticks": total - 1, "rate": (c1 - c0) / (t1 - t0), "measured_ticks": c1 - c0,
            "with_startup_s": points[-1][0] - started, "batch_size": batch_size}  # fmt: skip


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def bench_latency(messages: list[Msg], rate: int, seconds: float, workdir: Path) -> dict[str, Any]:
    topics = fresh_topics()
    worker = Worker(topics, workdir / f"latency-{rate}.log")
    n = min(len(messages), int(rate * seconds))
    warmup = min(n // 4, rate * WARMUP_S)  # the first ticks meet a cold consumer (first fetch, JIT-free warm-up)
    by_tick = {m[3]: i for i, m in enumerate(messages[:n]) if i >= warmup}
    produced = [0.0] * n
    results: dict[str, list[float]] = {}
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"{topics.prefix}-lat",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 1, "fetch.min.bytes": 1})  # fmt: skip
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics.derived() for p in range(1)])
    try:
        # Ready = the worker's consumer group is stable with the md partition assigned.
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                group = admin.describe_consumer_groups([worker.app_id])[worker.app_id].result(timeout=10)
                if any(m.assignment.topic_partitions for m in group.members):
                    break
            except Exception:  # noqa: BLE001 - group not there yet
                pass
            time.sleep(0.5)
        time.sleep(2.0)
        prod = producer(**{"linger.ms": 0, "batch.size": 65_536})

        def run_producer() -> None:
            start = time.perf_counter()
            for i in range(n):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                value, key, headers, _ = messages[i]
                produced[i] = time.time()
                prod.produce(topics.md, value, key, headers=headers)
                prod.poll(0)
            prod.flush(60)

        thread = threading.Thread(target=run_producer)
        thread.start()
        quiet_until = None
        while True:
            # poll, not consume(n, timeout): librdkafka's consume waits for n messages or the whole timeout,
            # which would add up to the timeout to every measured latency.
            polled = consumer.poll(0.05)
            msgs = [] if polled is None else [polled]
            now = time.time()
            for msg in msgs:
                if msg.error():
                    continue
                payload = json.loads(msg.value())
                tick = by_tick.get(payload["envelope"].get("correlation_id"))
                if tick is None:
                    continue
                family = payload["type"].split(".", 1)[0]
                results.setdefault(family, []).append((now - produced[tick]) * 1000)
                results.setdefault("any", []).append((now - produced[tick]) * 1000)
            if not thread.is_alive():
                quiet_until = quiet_until or time.time() + 3.0
                if time.time() > quiet_until:
                    break
    finally:
        consumer.close()
        worker.stop()
    table = {}
    for family, values in results.items():
        values.sort()
        table[family] = {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
                         "p999": percentile(values, 0.999), "max": values[-1]}  # fmt: skip
    return {"rate": rate, "ticks": n, "warmup": warmup, "latency_ms": table}


def bench_profile(messages: list[Msg], top: int = 18) -> dict[str, Any]:
    """The Faust app in this process, draining the preloaded topic under cProfile."""
    from streams.app import build_app

    topics = fresh_topics()
    produce_all(producer(), topics.md, messages)
    total = len(messages)

    async def run() -> float:
        done = asyncio.Event()
        app, _ = build_app(load_run_config(CONFIG), simulated_venues, BOOTSTRAP, topics,
                           loop=asyncio.get_running_loop(),
                           on_processed=lambda k: k.inputs >= total and done.set())  # fmt: skip
        app.finalize()
        await asyncio.wait_for(app.start(), timeout=90)
        started = time.perf_counter()
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            await asyncio.wait_for(done.wait(), timeout=600)
            await app.cse_settle()
        finally:
            profiler.disable()
            seconds = time.perf_counter() - started
            await asyncio.wait_for(app.stop(), timeout=60)
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        bench_profile.text = buf.getvalue()  # type: ignore[attr-defined]
        return seconds

    seconds = asyncio.run(run())
    return {"ticks": total, "seconds": seconds, "rate": total / seconds,
            "profile": bench_profile.text}  # type: ignore[attr-defined]  # fmt: skip


def bench_kernels_only(messages: list[Msg]) -> dict[str, Any]:
    """`PartitionKernels.process` on in-memory messages: decode + re-stamp + kernel + encode, no Kafka."""
    from streams.worker import InMessage, PartitionKernels

    kernels = PartitionKernels(load_run_config(CONFIG), simulated_venues)
    inputs = [InMessage("md", 0, i, k, v, header_map(h)) for i, (v, k, h, _) in enumerate(messages)]
    started = time.perf_counter()
    derived = len(kernels.process_all(inputs))
    seconds = time.perf_counter() - started
    return {"ticks": len(inputs), "derived": derived, "rate": len(inputs) / seconds}


def render(r: dict[str, Any], command: str) -> str:
    lines = [START, "", f"`{command}` - {time.strftime('%Y-%m-%d %H:%M')}, {platform.python_version()}, "
             f"{os.cpu_count()} cores, local single-broker Kafka 3.9.2 (KRaft) on the same machine, "
             f"1 md partition, sample spot + USD-M BTCUSDT ({r['sustained']['ticks']:,} ticks).", "",
             "| path | ticks/s |", "|---|---|",
             f"| plain confluent-kafka consume -> produce passthrough (ceiling) | {r['passthrough']['rate']:,.0f} |",
             f"| `PartitionKernels.process` alone, no Kafka (decode + re-stamp + kernel + encode) | "
             f"{r['kernels']['rate']:,.0f} |",
             *(f"| `cse worker` sustained, md -> strategy/risk/venues -> derived topics (startup excluded), "
               f"{_batches(s['batch_size'])} | {s['rate']:,.0f} |" for s in r["batches"]),
             f"| Faust app in-process under cProfile | {r['profile']['rate']:,.0f} |", "",
             "Tick -> output latency at fixed rates (ms; produced -> consumed from the derived topic; `n` = "
             "outputs matched to their tick):", "",
             "| rate (ticks/s) | output | n | p50 | p99 | p99.9 | max |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for lat in r["latency"]:
        for family in ("command", "any"):
            row = lat["latency_ms"].get(family)
            if row:
                lines.append(f"| {lat['rate']:,} | {family} | {row['n']} | {row['p50']:.1f} | {row['p99']:.1f} | "
                             f"{row['p999']:.1f} | {row['max']:.1f} |")  # fmt: skip
    sustained = r["sustained"]["rate"]
    lines += ["", f"- >= 50,000 ticks/s end to end ({_batches(r['sustained']['batch_size'])}, the best): {sustained:,.0f}/s, "
              f"{'met' if sustained >= 50_000 else f'NOT met ({50_000 / sustained:.0f}x short)'}."]  # fmt: skip
    at5k = next((x for x in r["latency"] if x["rate"] == 5_000), None)
    if at5k and "command" in at5k["latency_ms"]:
        p99 = at5k["latency_ms"]["command"]["p99"]
        lines.append(f"- p99 < 5 ms at 5,000 ticks/s: {p99:.1f} ms, {'met' if p99 < 5 else 'NOT met'}"
                     f"{' (5,000/s is above saturation)' if sustained < 5_000 else ''}.")  # fmt: skip
    prof = "\n".join(line for line in r["profile"]["profile"].splitlines() if line.strip())
    lines += ["", "<details><summary>cProfile of the worker's per-message path (Faust app in-process)</summary>",
              "", "```", prof, "```", "", "</details>", "", END]  # fmt: skip
    return "\n".join(lines)


def _batches(size: int | None) -> str:
    return "default batch size" if size is None else f"batches of {size:,}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="500,1000,5000")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch-sizes", default="1,7,500,5000",
                        help="CSE_WORKER_BATCH_SIZE of each sustained run ('default': leave it unset)")
    parser.add_argument("--sustained-only", action="store_true", help="only the sustained runs (implies --no-docs)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    sizes = [None if x == "default" else int(x) for x in args.batch_sizes.split(",")]
    command = "python tests/bench/bench_streams.py " + " ".join(sys.argv[1:])
    AdminClient({"bootstrap.servers": BOOTSTRAP}).list_topics(timeout=15)  # fails when no broker
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        messages = load_messages(workdir)
        r: dict[str, Any] = {"batches": []}
        for size in sizes:  # the worker's batch size (setting CSE_WORKER_BATCH_SIZE), one run each
            r["batches"].append(bench_sustained(messages, workdir, size))
            print("sustained", r["batches"][-1], flush=True)
        if args.sustained_only:
            return
        r["sustained"] = max(r["batches"], key=lambda b: b["rate"])
        r["passthrough"] = bench_passthrough(messages)
        print("passthrough", {k: v for k, v in r["passthrough"].items()}, flush=True)
        r["kernels"] = bench_kernels_only(messages)
        print("kernels only", r["kernels"], flush=True)
        r["latency"] = []
        for rate in [int(x) for x in args.rates.split(",")]:
            r["latency"].append(bench_latency(messages, rate, args.seconds, workdir))
            print("latency", r["latency"][-1], flush=True)
        r["profile"] = bench_profile(messages)
        print(f"profile: {r['profile']['rate']:,.0f} ticks/s\n{r['profile']['profile'][:6000]}", flush=True)
    text = render(r, command.strip())
    print(text)
    if not args.no_docs:
        write_section(DOCS, text, START, END, "Kafka path")


if __name__ == "__main__":
    main()
