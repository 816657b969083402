"""Columnar market data (adapters/columnar): exact amounts, exact row -> event materialisation on every recorded
session we have, backtests naming their data by hash, replay refusing changed data, migration of SQLite
sessions, and the reference layout still running."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from adapters.columnar.amounts import AmountOverflow, amount_parts, parse_amount, to_decimal
from adapters.columnar.migrate import NotMigratable, migrate_session
from adapters.columnar.store import MarketDataChanged
from adapters.entrypoints.commands import code_version, read_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.common import FileError, ImportRefused
from adapters.importers.lean import import_lean_quotes
from adapters.instruments.catalog import UnknownInstrument
from adapters.parquet_export import export_session
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest, session_instruments
from application.inspect_session import inspect_session
from application.ports import StoredRecord
from application.replay import replay_session, session_markers
from application.session_run import RunParameters, input_streams
from domain.events import EventBase, decode, encode
from domain.values import canonical_amount

pytestmark = pytest.mark.unit

DATA = Path(os.environ.get("CSE_SHARED_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
REPO = Path(__file__).resolve().parents[2]
SAMPLE = [REPO / "deploy/samples/hftbacktest/spot/btcusdt_20240808.gz",
          REPO / "deploy/samples/hftbacktest/usdm/btcusdt_20240808.gz"]  # fmt: skip
CAPTURES = sorted((DATA / "hftbacktest").glob("[!h]*/*.gz"))  # spot, usdm, cm (hyperliquid has no importer)
LEAN_QUOTES = sorted((DATA / "quantconnect-lean").rglob("*_quote.zip"))
CONFIG = REPO / "deploy/samples/spread-demo.toml"
DEMO = "binance-btcusdt-20240808"
"""The demo's input session id: event ids, hence the digest, depend on it."""


def version() -> str:
    return "test"


# -- amounts -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [("61800.30000000", (618003, -1)), ("0.00000000", (0, 0)), ("100", (100, 0)), ("1E-7", (1, -7)),
     ("-0.50", (-5, -1)), ("0.05", (5, -2)), ("5E+2", (500, 0)), ("9223372036854775807", ((1 << 63) - 1, 0))],
)  # fmt: skip
def test_a_source_string_parses_to_the_canonical_mantissa_and_exponent(
    text: str, parts: tuple[int, int]
) -> None:
    assert parse_amount(text) == parts
    canonical = Decimal(canonical_amount(Decimal(text)))  # what decoding the stored JSON gives
    assert amount_parts(Decimal(text)) == parts
    assert to_decimal(*parts).as_tuple() == canonical.as_tuple()


@pytest.mark.parametrize("text", ["9223372036854775808", "123456789012345678901.5", "1E-200"])
def test_an_amount_that_does_not_fit_is_refused(text: str) -> None:
    with pytest.raises(AmountOverflow, match=text.split("E")[0][:10]):
        parse_amount(text)


def test_an_import_refuses_an_overflowing_price_naming_file_and_line(tmp_path: Path) -> None:
    capture = tmp_path / "spot" / "btcusdt_20240808.gz"
    capture.parent.mkdir()
    trade = {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1723161256000, "s": "BTCUSDT", "t": 1,
             "p": "12345678901234567890.5", "q": "0.1", "T": 1723161256000, "m": True}}  # fmt: skip
    ok = dict(trade, data=dict(trade["data"], p="61800.3", t=0))  # type: ignore[arg-type]
    lines = [f"1723161256000000000 {json.dumps(ok)}", f"1723161256000000001 {json.dumps(trade)}"]
    with gzip.open(capture, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        with pytest.raises(
            FileError, match=r"btcusdt_20240808.gz, line 2: amount 12345678901234567890.5 does not fit"
        ):
            import_binance_ws(log, "s", [capture], code_version=version, echo=None)
        assert log.sessions() == []  # nothing stored


# -- row -> event, exact on every recorded session ----------------------------------------------------------


def same_fields(a: Any, b: Any, where: str = "event") -> None:
    """Field by field, a Decimal by its digits and exponent (== alone would call 1.0 and 1.00 equal)."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        for name in type(a).model_fields:
            same_fields(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_fields(x, y, f"{where}[{i}]")
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), where
    else:
        assert a == b, where


def migrate_and_compare(path: Path, session: str) -> int:
    """Move the session (imported as SQLite records) to a columnar file; every materialised event must be the
    stored one, field by field and byte for byte (migration itself refuses any byte difference)."""
    with SqliteEventLog(path, catalog=False) as reference:
        streams = [s for s in reference.streams(session) if s.startswith("md.")]
        stored = {s: [r.record.payload for r in reference.read(session, s)] for s in streams}
    with SqliteEventLog(path) as log:
        migration = migrate_session(log, session)
        assert migration.streams == tuple(streams)
        with sqlite3.connect(path) as db:
            (left,) = db.execute(
                "SELECT COUNT(*) FROM records WHERE session_id = ? AND stream LIKE 'md.%'", (session,)
            ).fetchone()
        assert left == 0  # the rows left SQLite
        checked = 0
        for stream in streams:
            events: list[EventBase] = list(log.input_events(session, stream, session) or [])
            assert len(events) == len(stored[stream])
            for event, payload in zip(events, stored[stream], strict=True):
                same_fields(event, decode(payload), f"{stream}#{event.envelope.sequence}")
                assert encode(event) == payload
                checked += 1
            assert [r.record.payload for r in log.read(session, stream)] == stored[stream]
    return checked


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_row_of_every_shared_capture_materialises_to_the_stored_event(
    tmp_path: Path, capture: Path
) -> None:
    path = tmp_path / "events.sqlite"
    with SqliteEventLog(path, catalog=False) as log:
        import_binance_ws(log, "s", [capture], code_version=version, echo=None)
    assert migrate_and_compare(path, "s") > 10_000


def test_every_row_of_the_lean_bars_and_the_shipped_sample_materialises_to_the_stored_event(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.sqlite"
    imported = 0
    with SqliteEventLog(path, catalog=False) as log:
        import_binance_ws(log, "sample", SAMPLE, code_version=version, echo=None)
        for i, quotes in enumerate(LEAN_QUOTES):
            try:
                import_lean_quotes(log, f"lean-{i}", [quotes], code_version=version, echo=None)
                imported += 1
            except (ImportRefused, UnknownInstrument):
                continue  # a file the importer refuses has no stored events to compare
    assert imported >= 10, f"only {imported} of {len(LEAN_QUOTES)} Lean quote files imported"
    assert migrate_and_compare(path, "sample") > 40_000
    for i in range(len(LEAN_QUOTES)):
        with SqliteEventLog(path) as log:
            present = f"lean-{i}" in log.sessions()
        if present:
            assert migrate_and_compare(path, f"lean-{i}") > 1  # daily bar files hold a handful


def test_an_import_writes_the_same_events_as_the_sqlite_layout_and_only_markers_in_sqlite(
    tmp_path: Path,
) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "col").mkdir()
    with SqliteEventLog(tmp_path / "ref" / "events.sqlite", catalog=False) as reference, \
            SqliteEventLog(tmp_path / "col" / "events.sqlite") as log:  # fmt: skip
        import_binance_ws(reference, "s", SAMPLE[:1], code_version=version, echo=None)
        import_binance_ws(log, "s", SAMPLE[:1], code_version=version, echo=None)
        import_binance_ws(
            reference, "s", SAMPLE[1:], code_version=version, echo=None
        )  # a second import extends
        import_binance_ws(log, "s", SAMPLE[1:], code_version=version, echo=None)
        assert log.streams("s") == reference.streams("s")
        for stream in reference.streams("s"):
            assert list(log.read("s", stream)) == list(reference.read("s", stream)), stream
        market = log.market_data("s")
        assert market is not None and market.codec == "arrow-ipc-lz4/v1"
        assert (tmp_path / "col" / "catalog" / f"{market.sha256}.arrow").is_file()
    with sqlite3.connect(tmp_path / "col" / "events.sqlite") as db:
        streams = {row[0] for row in db.execute("SELECT DISTINCT stream FROM records")}
    assert streams == {"session"}


# -- backtest, replay, migration ----------------------------------------------------------------------------


BT = "binance-btcusdt-20240808.bt-e012be6d094cf84b"
"""The demo's backtest id (`<input>.bt-<config hash>`): the same as before files were named."""


def digest_of(log: SqliteEventLog, session: str) -> str:
    ended = session_markers(log, session)[1]
    assert ended is not None
    return ended.digest


def unkeyed(stored: StoredRecord) -> tuple[int, str, str, int, bytes]:
    r = stored.record
    return stored.offset, r.stream, r.event_type, r.event_time_ns, r.payload


def backtest(log: SqliteEventLog, session: str, backtest_id: str | None = None) -> str:
    """What `cse backtest --session SESSION --config spread-demo.toml` runs (the demo's id by default)."""
    source = read_run_config(CONFIG)
    streams = input_streams(log, session)
    parameters = RunParameters(session, streams, source.validate(session_instruments(log, session, streams)))
    session_id = backtest_id or f"{session}.bt-{parameters.config_hash}"
    return run_backtest(log, parameters, session_id, simulated_venues, code_version()).session_id


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's import and backtest run twice: in the SQLite layout (reference) and columnar."""
    root = tmp_path_factory.mktemp("layouts")
    paths = {"reference": root / "ref" / "events.sqlite", "columnar": root / "col" / "events.sqlite"}
    ids = set()
    for name, path in paths.items():
        path.parent.mkdir()
        with SqliteEventLog(path, catalog=None if name == "columnar" else False) as log:
            import_binance_ws(log, DEMO, SAMPLE, code_version=version, echo=None)
            ids.add(backtest(log, DEMO))
    assert ids == {BT}  # the run's id does not depend on the layout
    return paths


def test_a_columnar_backtest_derives_exactly_what_the_reference_layout_derives(
    layouts: dict[str, Path],
) -> None:
    with (
        SqliteEventLog(layouts["reference"], catalog=False) as reference,
        SqliteEventLog(layouts["columnar"]) as log,
    ):
        for stream in reference.streams(BT):  # derived, merge, the inputs as the session serves them
            if (
                stream != "session"
            ):  # a served input's key is its import's (venue.instrument), a copy's was the stream
                assert [unkeyed(r) for r in log.read(BT, stream)] == [
                    unkeyed(r) for r in reference.read(BT, stream)
                ]
        ref_end, col_end = session_markers(reference, BT)[1], session_markers(log, BT)[1]
        assert ref_end is not None and col_end is not None and col_end.digest == ref_end.digest
        started = session_markers(log, BT)[0]
        assert started is not None
        market = log.market_data(DEMO)
        assert market is not None
        named = RunParameters.from_json(started.parameters).market_data
        assert named == (market.sha256, market.codec)  # the run names its data by content
        assert log.market_data(BT) is not None and log.market_data(BT).sha256 == market.sha256  # type: ignore[union-attr]
    with sqlite3.connect(layouts["columnar"]) as db:
        copied = db.execute(
            "SELECT COUNT(*) FROM records WHERE session_id = ? AND stream LIKE 'md.%'", (BT,)
        ).fetchone()
    assert copied == (0,)  # no copy of the inputs


def test_the_demo_digest_is_unchanged_on_the_columnar_layout(layouts: dict[str, Path]) -> None:
    with SqliteEventLog(layouts["columnar"]) as log:
        ended = session_markers(log, BT)[1]
        report = replay_session(log, BT, simulated_venues, code_version())
    assert (
        ended is not None
        and ended.digest == "ba88bb60fe49f2860cdbe0da169798e60716527a3281cb3d2907cf26413d7e58"
    )
    assert report.ok and report.replayed_digest == ended.digest


def test_inspect_and_export_read_the_same_files(layouts: dict[str, Path], tmp_path: Path) -> None:
    with (
        SqliteEventLog(layouts["reference"], catalog=False) as reference,
        SqliteEventLog(layouts["columnar"]) as log,
    ):
        assert inspect_session(log, DEMO) == inspect_session(reference, DEMO)
        rows = export_session(log, DEMO, tmp_path / "col.parquet")
        assert rows == export_session(reference, DEMO, tmp_path / "ref.parquet") > 40_000
    assert pq.read_table(tmp_path / "col.parquet").equals(pq.read_table(tmp_path / "ref.parquet"))


def test_replay_refuses_a_changed_file_naming_it_and_both_hashes(
    layouts: dict[str, Path], tmp_path: Path
) -> None:
    with SqliteEventLog(layouts["columnar"]) as log:
        market = log.market_data(BT)
        assert market is not None and log.catalog is not None
        original = log.catalog.path(market.sha256)
    copy = tmp_path / "events.sqlite"
    with sqlite3.connect(layouts["columnar"]) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    changed = tmp_path / "catalog" / original.name
    changed.parent.mkdir()
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    with SqliteEventLog(copy) as log:
        with pytest.raises(MarketDataChanged) as refused:
            replay_session(log, BT, simulated_venues, code_version())
        with pytest.raises(MarketDataChanged):  # a backtest's cached check sees the new stamp too
            backtest(log, DEMO, "bt-2")
    message = str(refused.value)
    assert str(changed) in message and market.sha256 in message
    assert __import__("hashlib").sha256(bytes(data)).hexdigest() in message


def test_a_sqlite_session_keeps_running_on_the_reference_path_then_migrates(tmp_path: Path) -> None:
    path, untouched = tmp_path / "events.sqlite", tmp_path / "old" / "events.sqlite"
    untouched.parent.mkdir()
    with SqliteEventLog(path, catalog=False) as log:  # a log written before columnar files
        import_binance_ws(log, "in", SAMPLE, code_version=version, echo=None)
        digest = digest_of(log, backtest(log, "in", "bt"))
    with sqlite3.connect(path) as source, sqlite3.connect(untouched) as target:
        source.backup(target)
    with SqliteEventLog(path) as log:  # today's code on it: the old sessions run as they are
        assert log.market_data("in") is None
        again = digest_of(log, backtest(log, "in", "bt-again"))  # copies its inputs, as before
        assert replay_session(log, "bt", simulated_venues, code_version()).ok
    assert migrate_and_compare(path, "in") > 40_000
    assert migrate_and_compare(path, "bt") > 40_000  # a backtest's copied inputs too
    with SqliteEventLog(path) as log:
        report = replay_session(log, "bt", simulated_venues, code_version())
        assert report.ok and report.replayed_digest == digest
        replayed = replay_session(
            log, "bt-again", simulated_venues, code_version()
        )  # not migrated: still runs
        assert replayed.ok and replayed.replayed_digest == again
        after = digest_of(log, backtest(log, "in", "bt-new"))
        with pytest.raises(NotMigratable, match="already columnar"):
            migrate_session(log, "in")
    with SqliteEventLog(untouched, catalog=False) as old:
        assert digest_of(old, backtest(old, "in", "bt-new")) == after  # same run, same events, either layout
