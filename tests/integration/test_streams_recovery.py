"""Crash recovery and scale-out of the Faust worker on the real broker, with real `cse worker` processes.

(a) A worker is SIGKILLed after some, not all, of its outputs were published, then restarted in the same
    consumer group: it restores the partition's kernels from its latest snapshot (the checkpoints topic),
    re-runs the inputs between the snapshot and the committed offset (re-publishing byte-identical
    duplicates) and finishes. Downstream (dedupe by event id) the digest equals
    the embedded backtest's: nothing lost, nothing diverged.
(b) Two workers in one group share a 2-partition md topic (two sessions of the sample pinned to different
    partitions: the sample has one instrument); one is stopped mid-stream, the other takes its partition
    over, and both sessions' digests equal their embedded backtests'.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.session_run import RunParameters, market_data_streams
from streams.digest import DerivedDigest, derived_digest
from streams.kafka_event_log import KafkaEventLog
from streams.record import record_session
from streams.topics import TopicConfig, Topics, create_topics
from streams.worker import default_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CONFIG = SAMPLES / "spread-demo.toml"
CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
SESSIONS = ("binance-btcusdt-20240808.a", "binance-btcusdt-20240808.b")
CSE = str(Path(sys.executable).parent / "cse")
BATCH_SIZES = [1, 7, 5000]  # md messages per agent batch: one by one, batches cut mid-burst, whole fetches
SESSION_TIMEOUT_S = "8"  # a SIGKILLed member holds its partitions this long (Faust's default is 60 s)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both sessions imported into one SQLite log and backtested under the worker's target session names."""
    log = SqliteEventLog(Path(tmp_path_factory.mktemp("recovery")) / "events.sqlite")
    config = load_run_config(CONFIG)
    results = {}
    for session in SESSIONS:
        import_binance_ws(log, session, CAPTURES, code_version=lambda: "test")
        parameters = RunParameters(session, market_data_streams(log, session), config)
        results[session] = run_backtest(log, parameters, default_target(config)(session), simulated_venues,
                                        "test")  # fmt: skip
        assert results[session].derived > 100, "the sample should trade"
    return {"log": log, "config": config, "results": results}


def fresh_topics(partitions: int) -> Topics:
    prefix = f"cse-it-{uuid.uuid4().hex[:10]}"
    created = create_topics(BOOTSTRAP, TopicConfig(prefix=prefix, partitions=partitions))  # fails: no broker
    assert set(created.values()) == {"created"}
    return Topics(prefix)


class Worker:
    """`cse worker` as a real process with its own environment; stdout+stderr to a log file."""

    def __init__(self, topics: Topics, app_id: str, log_path: Path, batch_size: int) -> None:
        env = {**os.environ, "CSE_KAFKA_BOOTSTRAP": BOOTSTRAP, "CSE_TOPIC_PREFIX": topics.prefix,
               "CSE_WORKER_SESSION_TIMEOUT_S": SESSION_TIMEOUT_S, "PYTHONUNBUFFERED": "1",
               "CSE_WORKER_BATCH_SIZE": str(batch_size),
               "CSE_METRICS_PORT": "0"}  # fmt: skip  # two workers on one host: any free port each
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([CSE, "worker", "--config", str(CONFIG), "--prefix", topics.prefix,
                                      "--app-id", app_id, "--loglevel", "info"],
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def published(topics: Topics) -> int:
    """Messages in the derived topics (high watermarks; duplicates included)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "cse-it-watermarks"})
    try:
        total = 0
        for topic in topics.derived():
            for p in consumer.list_topics(topic, timeout=15).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                total += high - low
        return total
    finally:
        consumer.close()


def committed(app_id: str, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": app_id, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                                       timeout=15)]  # fmt: skip
    finally:
        consumer.close()


def assignment(app_id: str, topic: str) -> list[list[int]]:
    """Per group member, its partitions of `topic` (sorted, members by first partition)."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    group = admin.describe_consumer_groups([app_id])[app_id].result(timeout=15)
    out = [sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)
           for m in group.members]  # fmt: skip
    return sorted(out)


def wait_for(what: str, check: Callable[[], Any], timeout: float, workers: list[Worker],
             every: float = 0.5) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        for worker in workers:
            worker.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(w.log()[-3000:] for w in workers)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(every)


def complete_digest(topics: Topics, session: str, expected: int) -> Callable[[], DerivedDigest | None]:
    def check() -> DerivedDigest | None:
        got = derived_digest(BOOTSTRAP, topics, session)
        return got if got.events >= expected else None

    return check


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_sigkilled_worker_restarts_without_loss_or_duplicates_downstream(
    embedded: dict[str, Any], workers: list[Worker], tmp_path: Path, batch_size: int
) -> None:
    session = SESSIONS[0]
    result = embedded["results"][session]
    topics = fresh_topics(partitions=2)
    app_id = f"{topics.prefix}-kernel"
    recorded = record_session(embedded["log"], KafkaEventLog(BOOTSTRAP, topics, account=embedded["config"].account),
                              session, inputs_only=True)  # fmt: skip
    assert recorded.inputs == result.inputs

    started = time.monotonic()
    first = Worker(topics, app_id, tmp_path / "worker-1.log", batch_size)
    workers.append(first)
    # Mid-stream: a third of the outputs out, and at least one offset commit (so the restart resumes there).
    wait_for("a third of the outputs", lambda: published(topics) >= result.derived // 3, 120, [first])
    wait_for("an offset commit", lambda: max(committed(app_id, topics.md, 2)) > 0, 30, [first])
    first.kill()
    at_kill, offsets_at_kill = published(topics), committed(app_id, topics.md, 2)
    assert 0 < at_kill < result.derived, f"not mid-stream: {at_kill} of {result.derived} outputs"
    print(f"\nSIGKILL after {time.monotonic() - started:.1f}s: {at_kill}/{result.derived} outputs, "
          f"committed md offsets {offsets_at_kill} of {recorded.inputs + 1}")  # fmt: skip

    second = Worker(topics, app_id, tmp_path / "worker-2.log", batch_size)
    workers.append(second)
    got = wait_for("the complete digest", complete_digest(topics, result.session_id, result.derived), 150,
                   [second], every=2.0)  # fmt: skip
    print(f"restarted worker done after {time.monotonic() - started:.1f}s: {got}")

    restored = re.search(r"restored kernels of \S+\[\d+\] at offset (\d+) \(next input (\d+)\)", second.log())
    assert restored, f"the restarted worker should have restored its snapshot:\n{second.log()[-3000:]}"
    assert "kernels: inputs through adapters.market_core.compiled_core" in second.log()  # snapshot holds the core
    snapshot_offset, resumed_at = map(int, restored.groups())
    assert 0 < snapshot_offset, "the snapshot should cover part of the stream"
    rerun = re.search(r"re-ran \S+\[\d+\] offsets \[(\d+), (\d+)\): (\d+) input", second.log())
    assert rerun, "the restarted worker should log what it re-ran"
    # Only the gap between the snapshot and the committed offset is re-run (none when the snapshot is ahead
    # of the commit: those inputs are skipped), never the partition from offset 0.
    assert tuple(map(int, rerun.groups())) == (snapshot_offset, resumed_at, max(0, resumed_at - snapshot_offset))
    print(f"restored at md offset {snapshot_offset}, resumed at {resumed_at}; "
          f"{got.duplicates_dropped} re-published duplicates dropped downstream")  # fmt: skip
    assert got.events == result.derived and got.gaps == 0 and got.conflicts == 0
    assert got.digest == result.digest


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_two_workers_share_partitions_and_one_takes_over(
    embedded: dict[str, Any], workers: list[Worker], tmp_path: Path, batch_size: int
) -> None:
    results = embedded["results"]
    topics = fresh_topics(partitions=2)
    app_id = f"{topics.prefix}-kernel"
    started = time.monotonic()
    for i in range(2):
        workers.append(Worker(topics, app_id, tmp_path / f"worker-{i}.log", batch_size))
    wait_for("one md partition per worker", lambda: assignment(app_id, topics.md) == [[0], [1]], 90, workers,
             every=1.0)  # fmt: skip
    print(f"\ngroup of 2 with one partition each after {time.monotonic() - started:.1f}s")

    kafka = KafkaEventLog(BOOTSTRAP, topics, account=embedded["config"].account)
    for partition, session in enumerate(SESSIONS):  # session a -> partition 0, b -> partition 1
        assert record_session(embedded["log"], kafka, session, inputs_only=True,
                              partition=partition).inputs == results[session].inputs  # fmt: skip

    def each_session_started() -> bool:  # each partition processed by its own worker, both far from done
        return all(derived_digest(BOOTSTRAP, topics, r.session_id).events >= r.derived // 10
                   for r in results.values())  # fmt: skip

    wait_for("outputs of both sessions", each_session_started, 120, workers)
    leaving, staying = workers
    leaving.stop()  # SIGTERM: commits, leaves the group; its partition is reassigned to the other worker
    ends = [results[s].inputs + 1 for s in SESSIONS]  # + the end-of-session control record
    at_stop = committed(app_id, topics.md, 2)
    assert all(0 <= done < end for done, end in zip(at_stop, ends, strict=True)), f"not mid-stream: {at_stop}"
    print(
        f"worker 0 stopped after {time.monotonic() - started:.1f}s, committed md offsets {at_stop} of {ends}"
    )
    wait_for("the survivor owning both partitions", lambda: assignment(app_id, topics.md) == [[0, 1]], 60,
             [staying], every=1.0)  # fmt: skip

    for session in SESSIONS:
        result = results[session]
        got = wait_for(f"the complete digest of {session}",
                       complete_digest(topics, result.session_id, result.derived), 150, [staying], every=2.0)  # fmt: skip
        assert got.events == result.derived and got.gaps == 0 and got.conflicts == 0, got
        assert got.digest == result.digest, session
    print(f"both sessions complete after {time.monotonic() - started:.1f}s")
    took_over = re.search(r"(restored|rebuilding) kernels of \S+\[\d+\]", staying.log())
    assert took_over and "re-ran " in staying.log(), "the survivor should have recovered the partition it took over"
    print(f"survivor: {took_over.group(0)}")
