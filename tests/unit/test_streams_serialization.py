"""Topics routing, message headers, dead letters and the per-partition kernels, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
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
from streams.worker import PartitionKernels, default_target, in_message

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


def test_partition_kernels_equal_embedded_backtest(tmp_path: Path) -> None:
    log = _sample(tmp_path, limit=5_000)
    config = load_run_config(SAMPLES / "spread-demo.toml")
    target = default_target(config)("s")
    parameters = RunParameters("s", market_data_streams(log, "s"), config)
    result = run_backtest(log, parameters, target, simulated_venues, "test")
    kernels = PartitionKernels(config, simulated_venues)
    out = []
    for offset, merged in enumerate(merged_inputs(log, "s", parameters.streams)):
        m = to_message("s", merged.item[1])
        out.extend(kernels.process(in_message("cse.md", 0, offset, m.key, m.value, m.headers)))
    out.extend(
        kernels.process(
            in_message(
                "cse.md",
                0,
                offset + 1,
                b"BTCUSDT",
                b"",
                [("cse-control", b"end-of-session"), ("cse-session", b"s")],
            )
        )
    )
    recorded = [s.record.payload for s in log.read(target, "derived")]
    assert [o.value for o in out] == recorded
    assert [int(header_map(o.headers)["cse-offset"]) for o in out] == list(range(len(recorded)))
    assert result.derived == len(recorded)
    assert not kernels.expects(0, 0) and kernels.expects(0, offset + 2)


def test_kernels_restored_from_snapshots_continue_byte_for_byte(tmp_path: Path) -> None:
    """A worker restored from a snapshot (here: a fresh one every 1,500 inputs) publishes exactly what an
    uninterrupted one publishes; snapshots of other code or config, or foreign bytes, are refused."""
    log = _sample(tmp_path, limit=5_000)
    config = load_run_config(SAMPLES / "spread-demo.toml")
    messages = []
    for offset, merged in enumerate(merged_inputs(log, "s", market_data_streams(log, "s"))):
        m = to_message("s", merged.item[1])
        messages.append(in_message("cse.md", 3, offset, m.key, m.value, m.headers))
    uninterrupted = PartitionKernels(config, simulated_venues, code_version="v1").process_all(messages)
    assert len(uninterrupted) > 20, "the sample should trade"

    kernels = PartitionKernels(config, simulated_venues, code_version="v1")
    resumed = []
    for msg in messages:
        if msg.offset and msg.offset % 1_500 == 0:
            blob = kernels.snapshot(3)
            kernels = PartitionKernels(config, simulated_venues, code_version="v1")
            assert not kernels.expects(3, msg.offset)
            assert kernels.restore(3, blob) == msg.offset and kernels.expects(3, msg.offset)
        resumed.extend(kernels.process(msg))
    assert [o.value for o in resumed] == [o.value for o in uninterrupted]
    assert [o.headers for o in resumed] == [o.headers for o in uninterrupted]
    assert kernels.restores == 1 and kernels.rebuilds == 0

    blob = kernels.snapshot(3)
    assert PartitionKernels(config, simulated_venues, code_version="v2").restore(3, blob) is None
    other = config.model_copy(update={"account": "other"})
    assert PartitionKernels(other, simulated_venues, code_version="v1").restore(3, blob) is None
    assert kernels.restore(3, b"cse-kernels/1\nnot zlib") is None and kernels.expects(3, len(messages))


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
