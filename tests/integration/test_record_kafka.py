"""`cse record --sink kafka`: the recorder writes a session to the real Kafka topics, read back whole and in
order (the same records the embedded log gets)."""

from __future__ import annotations

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from domain.events import InstrumentDefined, decode
from streams.kafka_event_log import KafkaEventLog
from streams.topics import TopicConfig, Topics, create_topics
from tests.local_exchange import LocalExchange
from tests.recording import record

pytestmark = pytest.mark.integration


def test_a_recording_into_kafka_reads_back_like_the_embedded_one(
    kafka_bootstrap: str, unique_name: str
) -> None:
    prefix = f"rec{unique_name}"
    create_topics(kafka_bootstrap, TopicConfig(prefix=prefix, partitions=2))
    kafka = KafkaEventLog(kafka_bootstrap, Topics(prefix))
    embedded = SqliteEventLog(":memory:")
    try:
        for log in (kafka, embedded):
            with LocalExchange(venues=["binance"], message_limit=1_500) as exchange:
                record(exchange, ["binance"], log, "live")
        stream = "md.binance-spot.BTCUSDT"
        from_kafka = [decode(s.record.payload) for s in kafka.read("live", stream)]
        from_sqlite = [decode(s.record.payload) for s in embedded.read("live", stream)]
    finally:
        kafka.close()
    assert isinstance(from_kafka[0], InstrumentDefined)
    assert [e.envelope.sequence for e in from_kafka] == list(range(len(from_kafka)))

    def content(events: list) -> list:  # the definition, every line of the capture; only receive times differ
        return sorted(e.model_dump_json(exclude={"envelope"}) for e in events)

    assert len(from_kafka) == 1 + 1_500 and content(from_kafka) == content(from_sqlite)
