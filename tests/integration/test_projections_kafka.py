"""`cse project --source kafka`: a session recorded to the real Kafka broker (streams.record, as `cse record`
does) and projected from the topics into PostgreSQL equals the plain fold of the same session; projecting
again after the whole session was re-published (duplicates on the topics) applies nothing.
Fails (never skips) when Kafka or PostgreSQL is unreachable."""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.entrypoints.projection_commands import _source
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from projections.projector import SqlProjector
from projections.sources import SnapshotLog
from projections.testing import (
    actual_read_models,
    assert_matches_fold,
    build_sample_session,
    dump,
    expected_read_models,
)
from streams.kafka_event_log import KafkaEventLog
from streams.record import record_session
from streams.topics import TopicConfig, Topics, create_topics
from tests.integration.pg_schema import migrated_schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
SESSION = "bt-kafka"


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    async with migrated_schema("t_projk") as eng:
        yield eng


async def test_project_from_kafka_equals_the_fold(engine: AsyncEngine, tmp_path: Path) -> None:
    prefix = f"cse-it-proj-{uuid.uuid4().hex[:10]}"
    created = await asyncio.to_thread(create_topics, BOOTSTRAP, TopicConfig(prefix=prefix, partitions=3))
    assert set(created.values()) == {"created"}  # fails if no broker
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        records = build_sample_session(log, SESSION, orders=150)
        kafka = KafkaEventLog(BOOTSTRAP, Topics(prefix))
        recorded = record_session(log, kafka, SESSION)  # blocking; the SQLite log is bound to this thread
        assert recorded.inputs + recorded.others == records
        expected = expected_read_models(log, SESSION)

        # the same wiring as `cse project --source kafka --prefix <prefix>`
        args = argparse.Namespace(source="kafka", prefix=prefix)
        with _source(Settings(kafka_bootstrap=BOOTSTRAP), args) as (source, where):
            assert isinstance(source, SnapshotLog) and prefix in where
            assert SESSION in source.sessions()
            projector = SqlProjector(engine, source, batch_size=97)
            assert await projector.project_session(SESSION) == records
            assert all(projector.lag(SESSION, s) == 0 for s in source.streams(SESSION))
        assert_matches_fold(await actual_read_models(engine, SESSION), expected)
        before = await dump(engine)

        # redelivery: the whole session published again (same session/stream/offset headers)
        kafka.publish(SESSION, [r for s in log.streams(SESSION) for r in log.read(SESSION, s)])
        source = SnapshotLog(KafkaEventLog(BOOTSTRAP, Topics(prefix)))
        assert await SqlProjector(engine, source).project_session(SESSION) == 0
        assert await dump(engine) == before
