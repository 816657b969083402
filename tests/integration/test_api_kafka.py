"""Subscriptions fed by the real Kafka topics (the consumer in the API process): a session recorded to Kafka is
replayed to a websocket client in order, and a mutation's command, appended to the topics, reaches a live
follower. Fails (never skips) when Kafka is unreachable."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.api.jobs import BacktestJobs
from adapters.api.keys import KeyStore
from adapters.api.services import ApiServices
from adapters.entrypoints.api_commands import run_backtest_job
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from application.ports import EventLog
from projections.queries import SqlReadModels
from projections.schema import make_engine
from projections.series_queries import SqlSeries
from projections.testing import build_sample_session
from streams.kafka_event_log import KafkaEventLog
from streams.live_feed import KafkaFeed
from streams.record import record_session
from streams.topics import TopicConfig, Topics, create_topics
from tests.api_support import LIVE, SESSION, WsClient, open_live_session, project_embedded, running_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def test_kafka_fed_subscriptions(tmp_path: Path) -> None:
    prefix = f"cse-it-api-{uuid.uuid4().hex[:10]}"
    created = create_topics(BOOTSTRAP, TopicConfig(prefix=prefix, partitions=3))
    assert set(created.values()) == {"created"}  # fails if no broker
    topics = Topics(prefix)
    settings = Settings(home=tmp_path)
    with SqliteEventLog(settings.event_log_path) as log:
        build_sample_session(log, SESSION, orders=10)
        record_session(log, KafkaEventLog(BOOTSTRAP, topics), SESSION)
        recorded = sorted((s.record.event_time_ns, stream, s.offset, s.record.event_type)
                          for stream in log.streams(SESSION) for s in log.read(SESSION, stream))  # fmt: skip
    project_embedded(settings, SESSION)
    with KafkaEventLog(BOOTSTRAP, topics) as kafka:  # commands go to a live session (the sample is finished)
        open_live_session(kafka)

    @contextlib.contextmanager
    def kafka_log() -> Iterator[EventLog]:
        with KafkaEventLog(BOOTSTRAP, topics) as log:
            yield log

    engine = make_engine(f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}")
    services = ApiServices(read_models=SqlReadModels(engine), series=SqlSeries(engine), open_log=kafka_log,
                           feed=KafkaFeed(BOOTSTRAP, topics), keys=KeyStore(settings.api_keys_path),
                           jobs=BacktestJobs(run_backtest_job), target="postgres")  # fmt: skip
    with running_server(settings, services) as server:
        replay = WsClient(server.url, server.keys["viewer"])
        replay.subscribe("r", "subscription($s: String!) { events(session: $s, replaySpeed: 0) "
                         "{ stream offset type eventTimeNs } }", {"s": SESSION})  # fmt: skip
        got = [p["data"]["events"] for p in replay.until_complete("r")]
        replay.close()
        assert [(int(e["eventTimeNs"]), e["stream"], int(e["offset"]), e["type"]) for e in got] == recorded

        follower = WsClient(server.url, server.keys["viewer"])
        follower.subscribe(
            "k", "subscription($s: String!) { risk(session: $s) { type eventId } }", {"s": LIVE}
        )
        time.sleep(3)  # the consumer is assigned at the end of every partition
        receipt = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "kafka") { commandId } }',
                              {"s": LIVE}, role="admin")["data"]["engageKillSwitch"]  # fmt: skip
        message = follower.recv()
        follower.close()
    assert message["type"] == "next"
    assert message["payload"]["data"]["risk"] == {"type": "command.engage_kill_switch",
                                                  "eventId": receipt["commandId"]}  # fmt: skip
