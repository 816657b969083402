"""The Kafka topics of CryptoSpreadEdge: names, keys, what each carries, and idempotent creation.

Every topic name is `{prefix}.{suffix}` (prefix `cse` by default; tests use a unique prefix). Topic settings
come from `TopicConfig` (built by the composition root from the settings `CSE_KAFKA_PARTITIONS`,
`CSE_KAFKA_REPLICATION`, `CSE_KAFKA_RETENTION_MS`, `CSE_TOPIC_PREFIX`, or CLI arguments). Event topics keep
everything by default (retention -1): they are the event log. The changelog topic is compacted.

Routing (`route`) maps an event-log record (stream, event type, payload) to (topic suffix, Kafka key):
- `md.{venue}.{instrument}[.part]` (recorded market data) -> `md`, key = instrument, so every venue of one
  instrument shares a partition, in the order it was published (the engine's merge order);
- `session` -> `session`, key = session id;
- anything else (`derived`, live outputs) by event type family: `signal.*` and derived `market.*` (book
  resync requests) -> `signals` keyed by instrument; `command.*` -> `commands`, `order.*` -> `orders`,
  `risk.*` -> `risk`, `portfolio.*` -> `portfolio`, all keyed by account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MD, COMMANDS, ORDERS, SIGNALS, RISK, PORTFOLIO, SESSION, DLQ, CHECKPOINTS = (
    "md", "commands", "orders", "signals", "risk", "portfolio", "session", "dlq", "checkpoints",
)  # fmt: skip


@dataclass(frozen=True)
class TopicSpec:
    suffix: str
    key: str
    carries: tuple[str, ...]
    description: str
    compacted: bool = False


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec(MD, "instrument (e.g. `BTCUSDT`)", ("market.instrument_defined", "market.quote", "market.trade",
              "market.book_snapshot", "market.book_delta", "command.* (sequenced operator commands)"),
              "recorded/live market data of every venue (each stream opened by its instrument's definition) and the operator commands merged into it; input of "
              "the kernel"),
    TopicSpec(COMMANDS, "account", ("command.*",),
              "operator commands (stream `commands`, copied into every md partition by the worker's sequencer) "
              "and the order commands the kernels derive"),
    TopicSpec(ORDERS, "account", ("order.*",), "order lifecycle events and fills from the venues"),
    TopicSpec(SIGNALS, "instrument", ("signal.*", "market.book_resync_needed"),
              "strategy signals and book resync requests derived from market data"),
    TopicSpec(RISK, "account", ("risk.*",), "risk decisions, kill switch, drawdown"),
    TopicSpec(PORTFOLIO, "account", ("portfolio.*",), "equity samples"),
    TopicSpec(SESSION, "session id", ("session.*",), "session markers (parameters, end digest)"),
    TopicSpec(DLQ, "original key", ("(any bytes)",),
              "dead letters: original bytes + headers `cse-dlq-reason`, `cse-dlq-topic`, `-partition`, `-offset`"),
    TopicSpec(CHECKPOINTS, "`{session}|{topic}|{partition}`", ("worker checkpoint JSON",),
              "compacted changelog: last input offset each worker partition has fully published", compacted=True),
)  # fmt: skip
SPECS_BY_SUFFIX = {spec.suffix: spec for spec in TOPIC_SPECS}
DERIVED_SUFFIXES = (SIGNALS, COMMANDS, RISK, ORDERS, PORTFOLIO)


@dataclass(frozen=True)
class TopicConfig:
    prefix: str = "cse"
    partitions: int = 6
    replication: int = 1
    retention_ms: int = -1  # the topics are the event log: keep forever unless told otherwise
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix."""

    prefix: str = "cse"

    def name(self, suffix: str) -> str:
        if suffix not in SPECS_BY_SUFFIX:
            raise KeyError(f"no topic {suffix!r}")
        return f"{self.prefix}.{suffix}"

    @property
    def md(self) -> str:
        return self.name(MD)

    @property
    def dlq(self) -> str:
        return self.name(DLQ)

    @property
    def session(self) -> str:
        return self.name(SESSION)

    @property
    def checkpoints(self) -> str:
        return self.name(CHECKPOINTS)

    def derived(self) -> list[str]:
        return [self.name(s) for s in DERIVED_SUFFIXES]

    def event_topics(self) -> list[str]:
        return [self.md, *self.derived(), self.session]

    def all(self) -> list[str]:
        return [self.name(spec.suffix) for spec in TOPIC_SPECS]


def topic_settings(spec: TopicSpec, config: TopicConfig) -> dict[str, str]:
    if spec.compacted:
        settings = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "3600000"}
    else:
        settings = {"cleanup.policy": "delete", "retention.ms": str(config.retention_ms)}
    settings["message.timestamp.type"] = "CreateTime"
    return {**settings, **config.extra}


def create_topics(bootstrap: str, config: TopicConfig, timeout: float = 30.0) -> dict[str, str]:
    """Create the topics that are missing (idempotent). Returns {topic: "created" | "exists"}.
    Raises confluent_kafka.KafkaException when the broker is unreachable."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    topics = Topics(config.prefix)
    result: dict[str, str] = {}
    new: list[NewTopic] = []
    for spec in TOPIC_SPECS:
        name = topics.name(spec.suffix)
        if name in existing:
            result[name] = "exists"
            continue
        new.append(NewTopic(name, num_partitions=config.partitions, replication_factor=config.replication,
                            config=topic_settings(spec, config)))  # fmt: skip
    if new:
        for name, future in admin.create_topics(new, operation_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                result[name] = "exists"
    return dict(sorted(result.items()))


def route(stream: str, event_type: str, payload: dict[str, Any], session_id: str,
          account: str = "default") -> tuple[str, str]:  # fmt: skip
    """(topic suffix, Kafka key) of an event-log record; see the module docstring."""
    if stream.startswith("md."):
        parts = stream.split(".")
        if len(parts) < 3:
            raise ValueError(f"market data stream {stream!r} is not md.<venue>.<instrument>")
        return MD, parts[2]
    if stream == "session" or event_type.startswith("session."):
        return SESSION, session_id
    family = event_type.split(".", 1)[0]
    if family in ("signal", "market"):
        return SIGNALS, str(payload.get("instrument") or session_id)
    suffix = {"command": COMMANDS, "order": ORDERS, "risk": RISK, "portfolio": PORTFOLIO}.get(family)
    if suffix is None:
        raise ValueError(f"no topic for event type {event_type!r} of stream {stream!r}")
    return suffix, str(payload.get("account") or account)


def describe(prefix: str = "cse") -> Iterable[tuple[str, TopicSpec]]:
    topics = Topics(prefix)
    for spec in TOPIC_SPECS:
        yield topics.name(spec.suffix), spec
