"""The kill switch engaged mid-run through the commands topic on the real broker.

The market data of a session goes to the md topic up to T; `cse command kill-switch engage --sink kafka
--at T` writes the command to the commands topic; the worker app's sequencer copies it into every md
partition; then the rest of the market data follows. The worker's kernels derive exactly what the embedded
backtest over the same session with the same command at T derives (same digest, event for event), no order
passes risk from T on, and re-running the md topic (the recorded merge) reproduces the published events with
zero divergences. A recorded session with a command (`cse record`) gives the embedded run too.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.session_run import RunParameters, input_streams, market_data_streams, session_inputs
from domain.events import KillSwitchEngaged, RiskCheckPassed, RiskCheckRejected, decode
from streams.app import build_app
from streams.digest import derived_digest
from streams.kafka_event_log import KafkaEventLog
from streams.record import record_session
from streams.replay import replay_from_kafka, rerun_md
from streams.serialization import CONTROL_END_OF_SESSION, H_CONTROL, H_SESSION
from streams.topics import TopicConfig, Topics, create_topics
from streams.worker import default_target

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BOOTSTRAP = os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
CONFIG = SAMPLES / "spread-demo.toml"
LIVE, RECORDED = "cmd-live", "cmd-recorded"
KILL_AT = "2024-08-08T23:54:38.5Z"  # 25 s into the sample, while the strategy trades
KILL_AT_NS = 1_723_161_278_500_000_000


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("commands")) / "events.sqlite"
    log = SqliteEventLog(path)
    config = load_run_config(CONFIG)
    for session in (LIVE, RECORDED):
        import_binance_ws(log, session, CAPTURES, code_version=lambda: "test")
    log.close()
    topics = Topics(f"cse-it-{uuid.uuid4().hex[:10]}")
    assert set(create_topics(BOOTSTRAP, TopicConfig(prefix=topics.prefix, partitions=3)).values()) == {
        "created"
    }
    return {"path": path, "config": config, "topics": topics}


def _command(monkeypatch: pytest.MonkeyPatch, prepared: dict[str, Any], session: str, sink: str) -> None:
    monkeypatch.setenv("CSE_EVENT_LOG", str(prepared["path"]))
    monkeypatch.setenv("CSE_TOPIC_PREFIX", prepared["topics"].prefix)
    monkeypatch.setenv("CSE_KAFKA_BOOTSTRAP", BOOTSTRAP)
    assert main(["command", "kill-switch", "engage", "--session", session, "--at", KILL_AT, "--reason", "desk",
                 "--operator", "alice", "--sink", sink]) == 0  # fmt: skip


def _embedded(prepared: dict[str, Any], session: str) -> Any:
    with SqliteEventLog(prepared["path"]) as log:
        parameters = RunParameters(session, input_streams(log, session), prepared["config"])
        return run_backtest(
            log, parameters, default_target(prepared["config"])(session), simulated_venues, "t"
        )


async def test_kill_switch_through_the_commands_topic(prepared: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # fmt: skip
    config, topics = prepared["config"], prepared["topics"]
    # The reference: the same command at T in the embedded log, and the embedded backtest over it.
    _command(monkeypatch, prepared, LIVE, "embedded")
    reference = await asyncio.to_thread(_embedded, prepared, LIVE)
    with SqliteEventLog(prepared["path"]) as log:
        md = [stored for _, stored in session_inputs(log, LIVE, market_data_streams(log, LIVE))]
    before = [s for s in md if s.record.event_time_ns < KILL_AT_NS]
    after = md[len(before) :]
    assert before and after

    app, kernels = build_app(config, simulated_venues, BOOTSTRAP, topics, app_id=f"{topics.prefix}-kernel",
                             loop=asyncio.get_running_loop())  # fmt: skip
    app.finalize()
    await asyncio.wait_for(app.start(), timeout=90)
    try:
        kafka = KafkaEventLog(BOOTSTRAP, topics, account=config.account)
        await asyncio.to_thread(kafka.publish, LIVE, before)
        await _until(lambda: kernels.inputs >= len(before))
        await asyncio.to_thread(_command, monkeypatch, prepared, LIVE, "kafka")  # to the commands topic
        await _until(lambda: kernels.inputs >= len(before) + 1)  # sequenced into md and fed
        await asyncio.to_thread(kafka.publish, LIVE, after)
        kafka.producer.produce(topics.md, b"", b"BTCUSDT", [(H_CONTROL, CONTROL_END_OF_SESSION),
                                                          (H_SESSION, LIVE.encode())])  # fmt: skip
        await asyncio.to_thread(kafka.producer.flush)
        await _until(lambda: kernels.inputs >= reference.inputs)
        await asyncio.sleep(2)  # the end-of-session marker releases the last venue events
        await app.cse_settle()
        await app.producer.flush()
    finally:
        await asyncio.wait_for(app.stop(), timeout=60)

    target = default_target(config)(LIVE)
    published = await asyncio.to_thread(derived_digest, BOOTSTRAP, topics, target)
    assert published.events == reference.derived and published.gaps == 0 and published.conflicts == 0
    assert published.digest == reference.digest  # the embedded run with the command at T, byte for byte

    events = [decode(s.record.payload) for s in KafkaEventLog(BOOTSTRAP, topics).read(target, "derived")]
    assert [e for e in events if isinstance(e, KillSwitchEngaged)][0].envelope.event_time_ns == KILL_AT_NS
    passed = [e for e in events if isinstance(e, RiskCheckPassed)]
    assert passed and max(e.envelope.event_time_ns for e in passed) < KILL_AT_NS
    assert any(isinstance(e, RiskCheckRejected) and e.rule == "kill_switch" for e in events)

    # Replay from Kafka: the md partitions are the recorded merge; re-running them diverges nowhere.
    rerun = await asyncio.to_thread(rerun_md, BOOTSTRAP, topics, config, simulated_venues)
    with SqliteEventLog(prepared["path"]) as log:
        embedded = [s.record.payload for s in log.read(target, "derived")]
    assert rerun[target] == embedded
    argv = ["replay", "--source", "kafka", "--session", target, "--config", str(CONFIG), "--verify"]
    capsys.readouterr()
    assert await asyncio.to_thread(main, argv) == 0  # `cse replay` of the worker run: 0 divergences
    assert f"{reference.derived} events checked: identical" in capsys.readouterr().out
    other = tmp_path / "other.toml"  # a replay with other fees must not pass: the check is not vacuous
    other.write_text(CONFIG.read_text().replace('taker_bps = "5"', 'taker_bps = "6"'))
    assert await asyncio.to_thread(main, [*argv[:-3], "--config", str(other), "--verify"]) == 1


async def test_a_recorded_session_with_a_command_runs_on_the_worker_as_embedded(
    prepared: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = prepared["config"]
    topics = Topics(f"cse-it-{uuid.uuid4().hex[:10]}")
    await asyncio.to_thread(create_topics, BOOTSTRAP, TopicConfig(prefix=topics.prefix, partitions=3))
    _command(monkeypatch, prepared, RECORDED, "embedded")
    reference = await asyncio.to_thread(_embedded, prepared, RECORDED)
    recorded = await asyncio.to_thread(_record, prepared, topics)
    assert recorded.inputs == reference.inputs  # the command is one of the inputs

    app, kernels = build_app(config, simulated_venues, BOOTSTRAP, topics, app_id=f"{topics.prefix}-kernel",
                             loop=asyncio.get_running_loop())  # fmt: skip
    app.finalize()
    await asyncio.wait_for(app.start(), timeout=90)
    try:
        await _until(lambda: kernels.inputs >= reference.inputs)
        await asyncio.sleep(2)
        await app.cse_settle()
        await app.producer.flush()
    finally:
        await asyncio.wait_for(app.stop(), timeout=60)
    published = await asyncio.to_thread(derived_digest, BOOTSTRAP, topics, default_target(config)(RECORDED))
    assert published.digest == reference.digest and published.events == reference.derived
    # The two other partitions got the command too, and created no kernel for the session.
    assert len({key[1] for key in kernels._runs}) == 1


def _record(prepared: dict[str, Any], topics: Topics) -> Any:
    with SqliteEventLog(prepared["path"]) as log:
        kafka = KafkaEventLog(BOOTSTRAP, topics, account=prepared["config"].account)
        return record_session(log, kafka, RECORDED, inputs_only=True)


async def _until(condition: Any, timeout: float = 240) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


def test_replay_from_kafka_of_a_backtest_with_a_command(prepared: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`cse replay --source kafka --verify` of a backtest session whose inputs include the kill switch."""
    session = default_target(prepared["config"])(RECORDED) + ".bt"
    with SqliteEventLog(prepared["path"]) as log:
        if log.end_offset(RECORDED, "commands") == 0:
            _command(monkeypatch, prepared, RECORDED, "embedded")
        parameters = RunParameters(RECORDED, input_streams(log, RECORDED), prepared["config"])
        result = run_backtest(log, parameters, session, simulated_venues, "t")
        topics = Topics(f"cse-it-{uuid.uuid4().hex[:10]}")
        create_topics(BOOTSTRAP, TopicConfig(prefix=topics.prefix, partitions=3))
        record_session(log, KafkaEventLog(BOOTSTRAP, topics, account=prepared["config"].account), session)
    report = replay_from_kafka(KafkaEventLog(BOOTSTRAP, topics), session, simulated_venues, "t")
    assert report.ok and report.divergences == 0, report
    assert report.events_checked == result.derived and report.replayed_digest == result.digest
    commands = list(KafkaEventLog(BOOTSTRAP, topics).read(session, "commands"))
    assert [c.record.event_type for c in commands] == ["command.engage_kill_switch"]
