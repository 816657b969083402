"""Topics routing, message headers, dead letters and the per-partition kernels, without a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.market_core import compiled_core
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.fast_run import reference_core
from application.session_run import RunParameters, market_data_streams, merged_inputs
from streams.serialization import (
    H_DLQ_REASON,
    H_TRACE,
    UndecodableMessage,
    dead_letter,
    from_message,
    header_map,
    to_message,
    traceparent,
)
from streams.topics import MD, ORDERS, SESSION, SIGNALS, TOPIC_SPECS, Topics, route
from streams.worker import InMessage, PartitionKernels, default_target, in_message

pytestmark = pytest.mark.unit


def test_routing_keys() -> None:
    assert route("md.binance-spot.BTCUSDT", "market.quote", {}, "s") == (MD, "BTCUSDT")
    assert route("md.binance-usdm.BTCUSDT.trades", "market.trade", {}, "s") == (MD, "BTCUSDT")
    assert route("session", "session.started", {}, "s") == (SESSION, "s")
    assert route("derived", "order.filled", {}, "s", account="demo") == (ORDERS, "demo")
    assert route("derived", "signal.spread_opportunity", {"instrument": "ETHUSDT"}, "s") == (
        SIGNALS,
        "ETHUSDT",
    )
    with pytest.raises(ValueError):
        route("derived", "nope.x", {}, "s")
    assert Topics("p").md == "p.md" and len(Topics().all()) == len(TOPIC_SPECS)
    assert [s.suffix for s in TOPIC_SPECS if s.compacted] == ["checkpoints"]


def test_traceparent_is_deterministic_w3c() -> None:
    a = traceparent("6b1f3c1e-7d0a-5c5e-9a43-1f5c0de5eed5")
    assert a == traceparent("6b1f3c1e-7d0a-5c5e-9a43-1f5c0de5eed5")
    version, trace, span, flags = a.split("-")
    assert (version, len(trace), len(span), flags) == ("00", 32, 16, "01")


def test_roundtrip_and_dead_letters(tmp_path: Path) -> None:
    log = _sample(tmp_path)
    stored = next(log.read("s", "md.binance-spot.BTCUSDT"))
    msg = to_message("s", stored)
    assert msg.value == stored.record.payload  # canonical JSON, unchanged
    headers = header_map(msg.headers)
    assert headers[H_TRACE].startswith(b"00-")
    back, event = from_message(msg.value, headers)
    assert back == stored and event.type == stored.record.event_type
    with pytest.raises(UndecodableMessage, match="not JSON"):
        from_message(b"{", headers)
    with pytest.raises(UndecodableMessage, match="header cse-type"):
        from_message(msg.value, {**headers, "cse-type": b"market.trade"})
    key, value, dlq_headers = dead_letter(b"{", b"k", msg.headers, "not JSON", "cse.md", 0, 7)
    assert value == b"{" and header_map(dlq_headers)[H_DLQ_REASON] == b"not JSON"


CORES = {"kernel": None, "reference core": reference_core, "compiled core": compiled_core}
"""What a worker's runs feed: every input through the kernel, or a market core (Python, Rust) and the
kernel at wakes only."""
BATCHES = [1, 7, 5_000]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample's first 5,000 inputs per stream, its embedded backtest, and its inputs as md messages of
    partition 3 (recorded merge order), ending with the end-of-session marker."""
    log = _sample(tmp_path_factory.mktemp("kernels"), limit=5_000)
    config = load_run_config(SAMPLES / "spread-demo.toml")
    target = default_target(config)("s")
    parameters = RunParameters("s", market_data_streams(log, "s"), config)
    result = run_backtest(log, parameters, target, simulated_venues, "test")
    messages = []
    for offset, merged in enumerate(merged_inputs(log, "s", parameters.streams)):
        m = to_message("s", merged.item[1])
        messages.append(in_message("cse.md", 3, offset, m.key, m.value, m.headers))
    end = [("cse-control", b"end-of-session"), ("cse-session", b"s")]
    messages.append(in_message("cse.md", 3, len(messages), b"BTCUSDT", b"", end))
    recorded = [s.record.payload for s in log.read(target, "derived")]
    assert result.derived == len(recorded) > 20, "the sample should trade"
    return {"config": config, "messages": messages, "recorded": recorded}


def _batches(messages: list[InMessage], size: int) -> list[list[InMessage]]:
    return [messages[i:i + size] for i in range(0, len(messages), size)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("core", CORES)
def test_partition_kernels_equal_embedded_backtest(sample: dict[str, Any], core: str, batch: int) -> None:
    """Whatever feeds the runs and however the md messages are batched, the worker publishes the embedded
    backtest's derived events, byte for byte, at the same offsets."""
    kernels = PartitionKernels(sample["config"], simulated_venues, core=CORES[core])
    out = [o for b in _batches(sample["messages"], batch) for o in kernels.process_batch(b)]
    recorded = sample["recorded"]
    assert [o.value for o in out] == recorded
    assert [int(header_map(o.headers)["cse-offset"]) for o in out] == list(range(len(recorded)))
    last = len(sample["messages"])
    assert kernels.inputs == last - 1 and not kernels.expects(3, 0) and kernels.expects(3, last)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("core", CORES)
def test_kernels_restored_from_snapshots_continue_byte_for_byte(sample: dict[str, Any], core: str,
                                                                 batch: int) -> None:  # fmt: skip
    """A worker restored from a snapshot after the batch that crosses every 1,500 inputs (a fresh worker
    each time: the market core's state travels in the snapshot) publishes exactly what the embedded
    backtest derived; snapshots of other code, config or core, or foreign bytes, are refused."""
    config, factory = sample["config"], CORES[core]
    kernels = PartitionKernels(config, simulated_venues, code_version="v1", core=factory)
    resumed, restores = [], 0
    for chunk in _batches(sample["messages"], batch):
        resumed.extend(kernels.process_batch(chunk))
        at = chunk[-1].offset + 1
        if at // 1_500 != chunk[0].offset // 1_500 and at < len(sample["messages"]):
            blob = kernels.snapshot(3)
            kernels = PartitionKernels(config, simulated_venues, code_version="v1", core=factory)
            assert not kernels.expects(3, at)
            assert kernels.restore(3, blob) == at and kernels.expects(3, at)
            restores += 1
    assert [o.value for o in resumed] == sample["recorded"]
    assert [int(header_map(o.headers)["cse-offset"]) for o in resumed] == list(range(len(sample["recorded"])))
    assert restores >= 2 and kernels.rebuilds == 0

    blob = kernels.snapshot(3)
    assert PartitionKernels(config, simulated_venues, code_version="v2", core=factory).restore(3, blob) is None
    other = config.model_copy(update={"account": "other"})
    assert PartitionKernels(other, simulated_venues, code_version="v1", core=factory).restore(3, blob) is None
    for name, other_core in CORES.items():
        if name != core:
            assert PartitionKernels(config, simulated_venues, code_version="v1", core=other_core).restore(3, blob) is None
    assert kernels.restore(3, b"cse-kernels/1\nnot zlib") is None and kernels.expects(3, len(sample["messages"]))


def _sample(tmp_path: Path, limit: int | None = None) -> SqliteEventLog:
    log = SqliteEventLog(tmp_path / "e.sqlite")
    import_binance_ws(log, "s", [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                                 SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"],
                      code_version=lambda: "t")  # fmt: skip
    if limit is None:
        return log
    small = SqliteEventLog(tmp_path / "small.sqlite")
    for stream in log.streams("s"):
        records = [s.record for _, s in zip(range(limit), log.read("s", stream), strict=False)]
        small.append("s", records)
    return small


def test_the_snapshot_interval_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.settings import Settings
    from streams.app import build_app

    with pytest.raises(ValueError, match="positive"):
        build_app(load_run_config(SAMPLES / "spread-demo.toml"), simulated_venues, "127.0.0.1:1", snapshot_every=0)
    monkeypatch.setenv("CSE_WORKER_SNAPSHOT_EVERY", "0")  # refused where the configuration is read
    with pytest.raises(ValueError, match="worker_snapshot_every"):
        Settings()


@pytest.mark.parametrize(("batch_size", "within_s"), [(0, 0.005), (7, 0.0)])
def test_the_worker_batch_must_be_positive(monkeypatch: pytest.MonkeyPatch, batch_size: int, within_s: float) -> None:
    from adapters.settings import Settings
    from streams.app import build_app

    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        build_app(load_run_config(SAMPLES / "spread-demo.toml"), simulated_venues, "127.0.0.1:1",
                  batch_size=batch_size, batch_within_s=within_s)  # fmt: skip
    monkeypatch.setenv("CSE_WORKER_BATCH_SIZE", str(batch_size))  # refused where the configuration is read
    monkeypatch.setenv("CSE_WORKER_BATCH_WITHIN_S", str(within_s))
    with pytest.raises(ValueError, match="worker_batch_size" if batch_size < 1 else "worker_batch_within_s"):
        Settings()
