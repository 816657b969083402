"""Operator commands in the per-partition kernels, without a broker: a partition holding the session's
market data and the sequenced command derives byte for byte what the embedded backtest over the session
with that command derives; a second copy of the command is not fed twice; a partition without the session's
market data creates no kernel; a held command survives a snapshot."""

from __future__ import annotations

import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.market_core import compiled_core
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import BacktestResult, run_backtest
from application.operator_commands import COMMANDS_STREAM, append_operator_command
from application.session_run import RunParameters, input_streams, session_inputs
from domain.events import EngageKillSwitch, KillSwitchEngaged, decode
from streams.sequencer import sequenced, to_forward
from streams.serialization import header_map, to_message
from streams.worker import InMessage, PartitionKernels, default_target, in_message

pytestmark = pytest.mark.unit
CONFIG = load_run_config(SAMPLES / "spread-demo.toml")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> SqliteEventLog:
    tmp = tmp_path_factory.mktemp("cmd")
    full = SqliteEventLog(tmp / "full.sqlite")
    import_binance_ws(full, "s", [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                                  SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"],
                      code_version=lambda: "t")  # fmt: skip
    log = SqliteEventLog(tmp / "small.sqlite")
    for stream in full.streams("s"):
        log.append("s", [s.record for _, s in zip(range(4_000), full.read("s", stream), strict=False)])
    md = list(session_inputs(log, "s", input_streams(log, "s")))
    kill_at = md[1_500][1].record.event_time_ns + 1
    append_operator_command(
        log, "s", kill_at, lambda env: EngageKillSwitch(envelope=env, reason="t", operator="o")
    )
    return log


def partition_messages(log: SqliteEventLog, partition: int) -> list[InMessage]:
    """The md partition `cse record` writes: the session's inputs in merge order, the command sequenced."""
    out = []
    for offset, (stream, stored) in enumerate(session_inputs(log, "s", input_streams(log, "s"))):
        m = to_message("s", stored)
        headers = sequenced(m.headers) if stream == COMMANDS_STREAM else m.headers
        out.append(in_message("cse.md", partition, offset, m.key, m.value, headers))
    return out


CORES = {"kernel": None, "compiled core": compiled_core}


@pytest.fixture(scope="module")
def embedded(session: SqliteEventLog) -> tuple[BacktestResult, list[bytes]]:
    """The embedded backtest of the session with its command, and its derived events."""
    target = default_target(CONFIG)("s")
    parameters = RunParameters("s", input_streams(session, "s"), CONFIG)
    assert parameters.streams[0] == COMMANDS_STREAM
    result = run_backtest(session, parameters, target, simulated_venues, "test")
    recorded = [s.record.payload for s in session.read(target, "derived")]
    assert any(isinstance(decode(p), KillSwitchEngaged) for p in recorded)
    return result, recorded


@pytest.mark.parametrize("core", CORES)
def test_a_sequenced_command_gives_the_embedded_run(session: SqliteEventLog, embedded: tuple[BacktestResult, list[bytes]],
                                                    core: str) -> None:  # fmt: skip
    result, recorded = embedded

    messages = partition_messages(session, 0)
    command = next(
        m for m in messages if header_map(list(m.headers.items())).get("cse-stream") == b"commands"
    )
    assert not to_forward(command.headers)  # already in md: the sequencer leaves it alone
    duplicate = InMessage(command.topic, 0, len(messages), command.key, command.value, command.headers)
    kernels = PartitionKernels(CONFIG, simulated_venues, core=CORES[core])
    out = kernels.process_all(messages)
    out += kernels.process(duplicate)  # at-least-once forwarding: the same command again
    assert [o.value for o in out] == recorded
    assert kernels.inputs == result.inputs

    lonely = PartitionKernels(CONFIG, simulated_venues, core=CORES[core])
    assert lonely.process(InMessage(command.topic, 1, 0, command.key, command.value, command.headers)) == []
    assert lonely.snapshot(1)  # no kernel for a partition that only saw the command


@pytest.mark.parametrize("core", CORES)
def test_a_command_before_any_market_data_is_held_through_a_snapshot(session: SqliteEventLog, core: str) -> None:
    messages = partition_messages(session, 2)
    command = next(m for m in messages if m.headers.get("cse-stream") == b"commands")
    first = InMessage(command.topic, 2, 0, command.key, command.value, command.headers)
    kernels = PartitionKernels(CONFIG, simulated_venues, code_version="v", core=CORES[core])
    assert kernels.process(first) == []
    restored = PartitionKernels(CONFIG, simulated_venues, code_version="v", core=CORES[core])
    assert restored.restore(2, kernels.snapshot(2)) == 1
    tick = messages[0]
    out = restored.process(InMessage(tick.topic, 2, 1, tick.key, tick.value, tick.headers))
    engaged = [
        decode(o.value)
        for o in out
        if o.headers and dict(o.headers).get("cse-type") == b"risk.kill_switch_engaged"
    ]
    assert len(engaged) == 1  # fed just before the session's first market data on the partition
    assert restored.inputs == 2
