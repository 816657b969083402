"""The Faust app: one agent consumes `{prefix}.md` and runs the same kernel as the embedded engine
(`application.engine.Kernel`, `build_deciders(config)`, the simulated venues) per md partition, publishing
derived events to their topics (see `streams.worker.PartitionKernels` for ids, state and limits).

Batches: the agent takes md messages in batches (`stream.take_events`, at most `batch_size` messages, setting
`CSE_WORKER_BATCH_SIZE`, waiting at most `batch_within_s` for a batch to fill, `CSE_WORKER_BATCH_WITHIN_S`),
feeds the batch to its partitions' kernels in the order received (offset order per partition), each run's
inputs through its market core (`PartitionKernels.process_batch`: the compiled core by default, `CSE_CORE`),
then waits until the batch's outputs are delivered; only then does Faust ack the batch's inputs. Outputs are
the same for any batch size (tested: 1, 7, 5,000): a batch changes when outputs are awaited and offsets
acked, and how many rows a core runs between calls, never what is derived.

Guarantee: at-least-once. Faust commits the offsets of processed inputs. State: after a batch, for every
partition with 5,000 inputs or more since its last snapshot (`snapshot_every`, setting
`CSE_WORKER_SNAPSHOT_EVERY`) or an end-of-session marker in the batch, once the outputs so far
are acknowledged, the partition's kernels are written to the `kernel-snapshots` table, whose changelog is the
compacted `{prefix}.checkpoints` topic (key `{app_id}|{md topic}|{partition}`); Faust restores the table
when a worker gets the partition. When a partition's next message is past the one the in-memory kernels
expect (restart, rebalance), the agent restores the snapshot and re-runs the inputs between it and the
message (read with confluent-kafka), or re-runs from offset 0 when there is no usable snapshot; re-published
outputs are byte-identical (deterministic ids) and the digest consumer (`streams.digest`) drops them by
event id. Messages below the restored offset are skipped: their effects are in the state.
Undecodable inputs go to `{prefix}.dlq` with the reason; the agent goes on.

Recovery: a worker that dies without leaving the group (SIGKILL, OOM, lost host) keeps its partitions until
the broker's session timeout expires; only then does a restarted or surviving worker get them. Faust's
default is 60 s; `session_timeout_s` (setting `CSE_WORKER_SESSION_TIMEOUT_S`) lowers it
(tests use 8 s; keep it well above the heartbeat interval, 3 s, and above any event-loop stall: a
re-run yields to the loop every `YIELD_EVERY` messages so heartbeats keep going).

Operator commands: a second agent, the sequencer, copies each operator command of `{prefix}.commands` into
every md partition (`streams.sequencer`), where the kernels apply it at its place in the partition.

`cse worker --config FILE` runs `build_app(...)` in a faust Worker.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import faust

from application.fast_run import CoreFactory
from application.run_config import RunConfig
from application.session_run import VenueFactory
from streams.kafka_io import read_partition, topic_partitions
from streams.sequencer import sequenced, to_forward
from streams.serialization import CONTROL_END_OF_SESSION, H_CONTROL, OutMessage
from streams.topics import COMMANDS, Topics
from streams.worker import Instruments, PartitionKernels, in_message

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 5_000  # inputs per partition; a snapshot of the sample's kernels takes ~8 ms
BATCH_SIZE = 500  # md messages per batch (docs/benchmarks.md, "Kafka path": measured 1, 7, 500, 5,000)
BATCH_WITHIN_S = 0.005  # the longest a message waits for its batch to fill (a latency cost at low rates)
YIELD_EVERY = 500


def build_app(
    config: RunConfig,
    venue_factory: VenueFactory,
    bootstrap: str,
    topics: Topics | None = None,
    app_id: str | None = None,
    target_session: Callable[[str], str] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    on_processed: Callable[[PartitionKernels], None] | None = None,
    settings: dict[str, Any] | None = None,
    code_version: str = "",
    instruments: Instruments | None = None,
    snapshot_every: int = SNAPSHOT_EVERY,
    session_timeout_s: float | None = None,
    batch_size: int = BATCH_SIZE,
    batch_within_s: float = BATCH_WITHIN_S,
    core: CoreFactory | None = None,
) -> tuple[faust.App, PartitionKernels]:
    """`settings`: extra/overriding faust.App settings (e.g. `broker_session_timeout`). `code_version`
    is stored in snapshots: a worker running other code ignores them and re-runs from offset 0. `core`: the
    market core of every run (`PartitionKernels`); None runs every input through the kernel."""
    topics = topics or Topics()
    kernels = PartitionKernels(config, venue_factory, target_session, code_version, instruments, core)
    log.info("kernels: inputs through %s", kernels.core_name)
    options: dict[str, Any] = {
        "broker": f"kafka://{bootstrap}",
        "store": "memory://",
        "web_enabled": False,
        "autodiscover": False,
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,  # `cse topics create` owns the topics
        "producer_acks": -1,
        # aiokafka needs python lz4/zstd packages for compression (not installed): derived events are few.
        # No linger: a derived event (an order command) leaves at once; p50 tick -> command 8 -> 4-5 ms at
        # 500-1,000 ticks/s (docs/benchmarks.md). Under load batches still form while a request is in flight.
        "producer_linger_ms": 0,
        "broker_commit_every": 1_000,
        # Bytes per partition per fetch (Faust's default is 1 MiB): with the snapshot table, 1 MiB fetches
        # cut throughput by a third; 8 MiB restores it (4,500 -> 6,400-6,800 ticks/s, docs/benchmarks.md).
        "consumer_max_fetch_size": 8 * 1024 * 1024,
    }
    if loop is not None:
        options["loop"] = loop
    if session_timeout_s is not None:
        options["broker_session_timeout"] = session_timeout_s
    app_id = app_id or f"{topics.prefix}-kernel"
    # Faust keeps a data directory even with memory tables; its default is the working directory.
    options["datadir"] = str(Path(tempfile.gettempdir()) / f"cse-faust-{app_id}-data")  # Faust makes one level
    options.update(settings or {})
    app = faust.App(app_id, **options)
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    md = app.topic(topics.md, allow_empty=True, **raw)
    snapshots = app.Table("kernel-snapshots", key_type=bytes, value_type=bytes,  # bytes: raw serializers
                          changelog_topic=app.topic(topics.checkpoints, **raw))  # fmt: skip
    since_snapshot: dict[int, int] = {}
    if snapshot_every < 1:
        raise ValueError(f"snapshot_every must be a positive number of inputs, not {snapshot_every}")
    if batch_size < 1 or batch_within_s <= 0:
        raise ValueError(f"batch_size must be >= 1 and batch_within_s > 0, not {batch_size}, {batch_within_s}")

    def snapshot_key(partition: int) -> bytes:
        return f"{app_id}|{topics.md}|{partition}".encode()
    outputs: dict[str, Any] = {}

    def out_topic(suffix: str) -> Any:
        if suffix not in outputs:
            outputs[suffix] = app.topic(topics.name(suffix), key_serializer="raw", value_serializer="raw")
        return outputs[suffix]

    pending: list[Any] = []

    async def publish(messages: list[OutMessage]) -> None:
        for out in messages:
            pending.append(await out_topic(out.topic_suffix).send(key=out.key, value=out.value,
                                                                  headers=out.headers))  # fmt: skip

    async def settle() -> None:
        if pending:
            batch = list(pending)
            pending.clear()
            await asyncio.gather(*batch)  # raises (and crashes the agent) if a delivery failed

    async def rerun(partition: int, start: int, end: int) -> None:
        history = await asyncio.to_thread(read_partition, bootstrap, topics.md, partition, end, start)
        for first in range(0, len(history), YIELD_EVERY):
            await asyncio.sleep(0)  # let heartbeats and the producer run during a long re-run
            await publish(kernels.process_batch([in_message(old.topic(), old.partition(), old.offset(), old.key(),
                                                            old.value(), old.headers())
                                                 for old in history[first:first + YIELD_EVERY]]))  # fmt: skip
        await settle()
        log.info("re-ran %s[%d] offsets [%d, %d): %d input(s)", topics.md, partition, start, end, len(history))

    async def recover(partition: int, offset: int) -> None:
        blob = snapshots.get(snapshot_key(partition))
        start = kernels.restore(partition, blob) if blob else None
        if start is None:
            log.info("rebuilding kernels of %s[%d] from offset 0 (next input %d)", topics.md, partition, offset)
            kernels.reset(partition)
            start = 0
            if instruments is not None:
                instruments.recovered("rebuild")
        else:
            if instruments is not None:
                instruments.recovered("restore")
            log.info("restored kernels of %s[%d] at offset %d (next input %d)", topics.md, partition, start,
                     offset)  # fmt: skip
        await rerun(partition, start, offset)

    @app.agent(md, name="kernel")
    async def run_kernels(stream: Any) -> None:
        # Faust acks a batch's events only after this loop body has returned for it, i.e. after its outputs
        # are delivered (settle): at-least-once holds per batch as it did per message.
        async for batch in md_batches(stream, batch_size, batch_within_s):
            last: dict[int, Any] = {}  # partition -> its last event in this batch
            ended: set[int] = set()  # partitions whose batch held an end-of-session marker
            taken: list[Any] = []  # the batch's inputs not yet fed, in order
            expected: dict[int, int] = {}  # partition -> the offset its next input must have
            for event in batch:
                message = event.message
                partition, offset = message.partition, message.offset
                if partition not in expected:
                    expected[partition] = kernels.next_offset(partition)
                if offset > expected[partition]:  # a gap: restart, rebalance, or a takeover
                    await publish(kernels.process_batch(taken))  # the inputs before it, first
                    taken.clear()
                    await recover(partition, offset)
                    expected[partition] = kernels.next_offset(partition)
                if offset < expected[partition]:
                    continue  # redelivered below the state's offset: its effects and outputs are already there
                incoming = in_message(message.topic, partition, offset, message.key, message.value,
                                      message.headers)  # fmt: skip
                taken.append(incoming)
                expected[partition] = offset + 1
                since_snapshot[partition] = since_snapshot.get(partition, 0) + 1
                last[partition] = event
                if incoming.headers.get(H_CONTROL) == CONTROL_END_OF_SESSION:
                    ended.add(partition)
            # The whole batch through the market cores at once: they call the kernels in only at wakes.
            await publish(kernels.process_batch(taken))
            await settle()
            for partition, event in sorted(last.items()):
                message = event.message
                if since_snapshot[partition] >= snapshot_every or partition in ended:
                    # A table write goes to the changelog partition of the stream's current event: make that
                    # the partition's last event of the batch (outside iteration Faust has none).
                    stream._set_current_event(event)
                    snapshots[snapshot_key(partition)] = kernels.snapshot(partition)
                    since_snapshot[partition] = 0
                if instruments is not None:
                    highwater = app.consumer.highwater(message.tp)
                    if highwater is not None:
                        instruments.lag(message.topic, partition, max(0, highwater - message.offset - 1))
            if last and on_processed is not None:
                on_processed(kernels)

    commands = app.topic(topics.name(COMMANDS), allow_empty=True, **raw)
    md_partitions: list[int] = []

    @app.agent(commands, name="sequencer")
    async def sequence_commands(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            incoming = in_message(message.topic, message.partition, message.offset, message.key, message.value,
                                  message.headers)  # fmt: skip
            if not to_forward(incoming.headers):
                continue
            if not md_partitions:
                md_partitions.extend(await asyncio.to_thread(topic_partitions, bootstrap, topics.md))
            headers = sequenced(list(incoming.headers.items()))
            sent = [await md.send(key=incoming.key, value=incoming.value, headers=headers, partition=p)
                    for p in md_partitions]  # fmt: skip
            await asyncio.gather(*sent)  # in every partition before the command's offset is committed
            log.info("sequenced operator command %s into %s partitions %s",
                     incoming.headers.get("cse-event-id", b"?").decode(), topics.md, md_partitions)  # fmt: skip

    app.cse_settle = settle  # type: ignore[attr-defined]
    return app, kernels


def md_batches(stream: Any, size: int, within_s: float) -> AsyncIterator[Sequence[Any]]:
    """The stream's events in batches: `take_events` (at most `size`, waiting at most `within_s` for a batch to
    fill); size 1 iterates Faust's events one by one (acked the same way: when the next one is asked for),
    without take_events' hand-off between its buffer and the agent on every message."""
    if size == 1:
        return _one_by_one(stream)
    return stream.take_events(max_=size, within=within_s)  # type: ignore[no-any-return]


async def _one_by_one(stream: Any) -> AsyncIterator[Sequence[Any]]:
    async for event in stream.events():
        yield [event]
