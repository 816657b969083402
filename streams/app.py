"""The Faust app: one agent consumes `{prefix}.md` and runs the same kernel as the embedded engine
(`application.engine.Kernel`, `build_deciders(config)`, the simulated venues) per md partition, publishing
derived events to their topics (see `streams.worker.PartitionKernels` for ids, state and limits).

Guarantee: at-least-once. Faust commits the offsets of processed inputs; after a restart or rebalance the
first message of a partition is not the one the in-memory kernels expect, so the partition is replayed from
offset 0 (read with confluent-kafka) to rebuild the kernels, re-publishing their outputs; the messages are
byte-identical (deterministic ids) and the digest consumer (`streams.digest`) drops them by event id.
Undecodable inputs go to `{prefix}.dlq` with the reason; the agent goes on.

Recovery: a worker that dies without leaving the group (SIGKILL, OOM, lost host) keeps its partitions until
the broker's session timeout expires; only then does a restarted or surviving worker get them. Faust's
default is 60 s; `CSE_WORKER_SESSION_TIMEOUT_S` (or `settings={"broker_session_timeout": ...}`) lowers it
(tests use 8 s; keep it well above the heartbeat interval, 3 s, and above any event-loop stall: the
rebuild yields to the loop every `YIELD_EVERY` messages so heartbeats keep going).

`cse worker --config FILE` runs `build_app(...)` in a faust Worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import faust

from application.run_config import RunConfig
from application.session_run import VenueFactory
from streams.kafka_io import read_partition
from streams.serialization import OutMessage
from streams.topics import Topics
from streams.worker import PartitionKernels, in_message

log = logging.getLogger(__name__)

FLUSH_EVERY = 1_000
YIELD_EVERY = 500
SESSION_TIMEOUT_ENV = "CSE_WORKER_SESSION_TIMEOUT_S"


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
) -> tuple[faust.App, PartitionKernels]:
    """`settings`: extra/overriding faust.App settings (e.g. `broker_session_timeout`)."""
    topics = topics or Topics()
    kernels = PartitionKernels(config, venue_factory, target_session)
    options: dict[str, Any] = {
        "broker": f"kafka://{bootstrap}",
        "store": "memory://",
        "web_enabled": False,
        "autodiscover": False,
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,  # `cse topics create` owns the topics
        "producer_acks": -1,
        # aiokafka needs python lz4/zstd packages for compression (not installed): derived events are few.
        "producer_linger_ms": 5,
        "broker_commit_every": 1_000,
    }
    if loop is not None:
        options["loop"] = loop
    if os.environ.get(SESSION_TIMEOUT_ENV):
        options["broker_session_timeout"] = float(os.environ[SESSION_TIMEOUT_ENV])
    options.update(settings or {})
    app = faust.App(app_id or f"{topics.prefix}-kernel", **options)
    md = app.topic(topics.md, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                   allow_empty=True)  # fmt: skip
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

    @app.agent(md, name="kernel")
    async def run_kernels(stream: Any) -> None:
        count = 0
        async for event in stream.events():
            message = event.message
            partition, offset = message.partition, message.offset
            if not kernels.expects(partition, offset):
                log.info(
                    "rebuilding kernels of %s[%d] from offset 0 (next input %d)", topics.md, partition, offset
                )
                kernels.reset(partition)
                history = await asyncio.to_thread(read_partition, bootstrap, topics.md, partition, offset)
                for i, old in enumerate(history):
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)  # let heartbeats and the producer run during a long rebuild
                    await publish(kernels.process(in_message(old.topic(), old.partition(), old.offset(), old.key(),
                                                             old.value(), old.headers())))  # fmt: skip
                await settle()
                log.info("rebuilt %s[%d]: %d input(s) re-run", topics.md, partition, len(history))
            await publish(kernels.process(in_message(message.topic, partition, offset, message.key,
                                                     message.value, message.headers)))  # fmt: skip
            count += 1
            if count % FLUSH_EVERY == 0 or stream_idle(stream):
                await settle()
                if on_processed is not None:
                    on_processed(kernels)

    app.cse_settle = settle  # type: ignore[attr-defined]
    return app, kernels


def stream_idle(stream: Any) -> bool:
    try:
        return bool(stream.channel.empty())
    except AttributeError:  # pragma: no cover
        return True
