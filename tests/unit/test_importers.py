"""Importers on the real recorded files, bad-row reporting on corrupted copies, and the Parquet export."""

from __future__ import annotations

import gzip
import io
import json
import os
import zipfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.common import SESSION_STREAM, FileError
from adapters.importers.lean import import_lean_quotes
from adapters.importers.tabular import PRESETS, import_preset, import_table
from adapters.parquet_export import export_session
from adapters.sqlite_event_log import SqliteEventLog
from application.merge import merge_pairs
from domain.events import (
    BookSnapshot,
    FilesImported,
    InstrumentDefined,
    QuoteTick,
    SessionStarted,
    TradeTick,
    decode,
    input_event_id,
)
from domain.values import Side

pytestmark = pytest.mark.unit

DATA = Path(os.environ.get("CSE_SHARED_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
"""../shared/data beside the checkout; CSE_SHARED_DATA points elsewhere (a git worktree)."""
HFT = DATA / "hftbacktest"


def test_recorded_data_is_beside_the_checkout() -> None:
    # The real-data tests below need ../shared/data (CI has it): missing data is a failure, never a skip.
    assert HFT.is_dir(), f"recorded data not at {DATA}"


def version() -> str:
    return "test-build"


@pytest.fixture
def log(tmp_path: Path) -> SqliteEventLog:
    return SqliteEventLog(tmp_path / "events.sqlite")


def types_in(log: SqliteEventLog, session: str, stream: str) -> Counter[str]:
    return Counter(r.record.event_type for r in log.read(session, stream))


@pytest.mark.parametrize(
    ("path", "stream", "counts"),
    [
        ("spot/btcusdt_20240808.gz", "md.binance-spot.BTCUSDT", (3_451, 28_040, 9_757, 1)),
        ("usdm/btcusdt_20240808.gz", "md.binance-usdm.BTCUSDT", (6_551, 66_089, 21_313, 1)),
        ("cm/btcusd_perp_20240808.gz", "md.binance-coinm.BTCUSD_PERP", (26_847, 19_136, 2_286, 1)),
    ],
)
def test_binance_captures_match_the_readme(
    log: SqliteEventLog, path: str, stream: str, counts: tuple[int, int, int, int]
) -> None:
    report = import_binance_ws(log, "s", [HFT / path], code_version=version, echo=None)
    depth, quotes, trades, snapshots = counts
    expected = {"market.book_delta": depth, "market.quote": quotes, "market.trade": trades}
    expected["market.book_snapshot"] = snapshots
    expected["market.instrument_defined"] = 1
    assert report.bad_row_count == 0
    assert types_in(log, "s", stream) == expected
    assert log.streams("s") == [stream, SESSION_STREAM]
    assert report.records == sum(counts)
    first, second = (decode(r.record.payload) for _, r in zip(range(2), log.read("s", stream), strict=False))
    assert (
        isinstance(first, InstrumentDefined) and first.envelope.event_time_ns == second.envelope.event_time_ns
    )
    assert f"md.{first.venue}.{first.instrument}" == stream

    started, imported = (decode(r.record.payload) for r in log.read("s", SESSION_STREAM))
    assert isinstance(started, SessionStarted) and isinstance(imported, FilesImported)
    assert [(f.name, f.records, f.refused_rows, f.streams) for f in imported.files] == [
        (Path(path).name, sum(counts), 0, (stream,))
    ]
    assert imported.files[0].feed == stream.split(".")[1]  # told from the content, not the folder
    assert (started.mode, started.model_hash, started.code_version) == ("import", "", "test-build")
    assert len(started.config_hash) == 64

    times = []
    for stored in log.read("s", stream):
        times.append(stored.record.event_time_ns)
        if stored.offset < 60:
            event = decode(stored.record.payload)
            assert event.envelope.sequence == stored.offset
            assert event.envelope.event_id == input_event_id("s", stream, stored.offset)
            assert (
                event.envelope.event_time_ns == event.envelope.ingest_time_ns == stored.record.event_time_ns
            )
    assert times == sorted(times)


def test_spot_message_mapping(log: SqliteEventLog) -> None:
    import_binance_ws(log, "s", [HFT / "spot/btcusdt_20240808.gz"], code_version=version, echo=None)
    events = [
        decode(r.record.payload)
        for _, r in zip(range(13), log.read("s", "md.binance-spot.BTCUSDT"), strict=False)
    ][1:]  # after the InstrumentDefined
    # line 1: depth; line 3: bookTicker u=50093239212; line 4: trade m=true (buyer maker -> aggressor SELL)
    assert events[0].type == "market.book_delta"
    assert events[0].first_update_id == 50093239189 and events[0].final_update_id == 50093239202  # type: ignore[attr-defined]
    quote = events[2]
    assert isinstance(quote, QuoteTick) and quote.venue_update_id == 50093239212
    assert quote.bid_price == Decimal("61837.63")
    trade = events[3]
    assert (
        isinstance(trade, TradeTick)
        and trade.aggressor_side is Side.SELL
        and trade.venue_trade_id == "3735683259"
    )
    assert trade.envelope.event_time_ns == 1723161254087896568
    snapshot = next(e for e in events if e.type == "market.book_snapshot")
    assert isinstance(snapshot, BookSnapshot) and snapshot.last_update_id == 50093239218 and snapshot.bids


def test_two_days_continue_one_stream(log: SqliteEventLog) -> None:
    paths = [HFT / "spot/btcusdt_20240808.gz", HFT / "spot/btcusdt_20240809.gz"]
    import_binance_ws(log, "s", paths[:1], code_version=version, echo=None)
    report = import_binance_ws(log, "s", paths[1:], code_version=version, echo=None)
    assert report.bad_row_count == 0 and report.records == 58_325
    assert log.end_offset("s", "md.binance-spot.BTCUSDT") == 1 + 41_249 + 58_325  # definition + every line, snapshot included
    markers = [decode(r.record.payload).type for r in log.read("s", SESSION_STREAM)]
    assert markers == ["session.started", "session.files_imported", "session.files_imported"]


def write_gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


def test_corrupted_capture_reports_bad_lines_and_keeps_going(tmp_path: Path, log: SqliteEventLog) -> None:
    with gzip.open(HFT / "spot/btcusdt_20240808.gz", "rt") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(200)]
    trade_at = next(i for i, line in enumerate(lines) if "@trade" in line and i > 20)
    t0 = int(lines[30].split(" ", 1)[0])
    lines[10] = lines[10][: len(lines[10]) // 2]  # truncated JSON
    lines[20] = lines[trade_at].replace('"p":', '"price":')  # missing field
    lines[25] = lines[trade_at].replace('"q":"', '"q":"abc')  # invalid number
    lines[40] = f"{t0 - 1_000_000_000} " + lines[40].split(" ", 1)[1]  # time goes backwards
    lines[50] = "notatime " + lines[50].split(" ", 1)[1]
    lines[60] = lines[60].split(" ", 1)[0] + ' {"stream":"btcusdt@kline_1m","data":{}}'
    bad_file = tmp_path / "spot" / "btcusdt_20240808.gz"
    write_gz(bad_file, lines)

    report = import_binance_ws(log, "s", [bad_file], code_version=version, echo=None)
    got = {row.line: (row.reason, row.detail) for row in report.bad_rows}
    assert sorted(got) == [11, 21, 26, 41, 51, 61]
    assert all(row.file == str(bad_file) for row in report.bad_rows)
    assert got[11][0] == "invalid JSON"
    assert got[21] == ("missing field", "'p'")
    assert got[26][0] == "invalid fields" and "size" in got[26][1]
    assert got[41][0] == "time goes backwards"
    assert got[51] == ("bad receive time", "'notatime'")
    assert got[61] == ("unsupported message", "unsupported stream kind 'kline_1m'")
    assert report.bad_row_count == 6
    assert report.files[0].refused == report.bad_by_reason  # one file: its counts are the totals
    assert log.end_offset("s", "md.binance-spot.BTCUSDT") == 1 + 194
    assert "rows refused: 6" in report.summary()


def test_bad_rows_kept_are_capped_but_all_counted(tmp_path: Path, log: SqliteEventLog) -> None:
    with gzip.open(HFT / "spot/btcusdt_20240808.gz", "rt") as fh:
        good = next(fh).rstrip("\n")
    bad_file = tmp_path / "spot" / "btcusdt_20240808.gz"
    write_gz(bad_file, [good] + [f"{i} nonsense" for i in range(1, 301)])
    report = import_binance_ws(log, "s", [bad_file], code_version=version, max_bad_rows_kept=10, echo=None)
    assert report.bad_row_count == 300 and len(report.bad_rows) == 10
    assert report.bad_by_reason == {"invalid JSON": 300} and report.records == 1


LEAN = DATA / "quantconnect-lean"


def test_lean_quote_bars_at_bar_end(log: SqliteEventLog) -> None:
    path = LEAN / "cryptofuture/binance/minute/btcusd/20221213_quote.zip"
    report = import_lean_quotes(log, "s", [path], code_version=version, echo=None)
    assert report.bad_row_count == 0
    stream = "md.binance-cryptofuture.BTCUSD"
    assert log.end_offset("s", stream) == 1 + 1_104
    first = decode(log.read("s", stream, 1).__next__().record.payload)
    assert isinstance(first, QuoteTick)
    # 0,17203.9,17207.5,17203.9,17207.5,1565,17204,17207.6,17204,17207.6,221 -> stamped at 00:01:00
    assert first.envelope.event_time_ns == 1_670_889_600_000_000_000 + 60_000_000_000
    assert (str(first.bid_price), str(first.bid_size), str(first.ask_price), str(first.ask_size)) == (
        "17207.5", "1565", "17207.6", "221",
    )  # fmt: skip


def test_lean_trade_bars_are_refused(log: SqliteEventLog) -> None:
    with pytest.raises(FileError, match="20221213_trade.zip: only quote bars"):
        import_lean_quotes(
            log, "s", [LEAN / "cryptofuture/binance/minute/btcusd/20221213_trade.zip"], code_version=version
        )


def test_lean_bad_rows(tmp_path: Path, log: SqliteEventLog) -> None:
    path = tmp_path / "cryptofuture" / "bybit" / "minute" / "btcusd" / "20221213_quote.zip"
    path.parent.mkdir(parents=True)
    rows = ["60000,1,1,1,1,5,2,2,2,2,6", "90000,1,1,1,x,5,2,2,2,2,6", "short,row", "30000,1,1,1,1,5,2,2,2,2,6",
            "120000,1,1,1,1,5,2,2,2,2,6"]  # fmt: skip
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data.csv", "\n".join(rows) + "\n")
    report = import_lean_quotes(log, "s", [path], code_version=version, echo=None)
    assert [(r.line, r.reason) for r in report.bad_rows] == [
        (2, "invalid fields"),
        (3, "wrong field count"),
        (4, "time goes backwards"),
    ]
    assert log.end_offset("s", "md.bybit-cryptofuture.BTCUSD") == 1 + 2


NAUTILUS = DATA / "nautilus_trader/tests/test_data"


def test_tabular_presets(log: SqliteEventLog) -> None:
    quotes = import_preset(log, "n", [NAUTILUS / "binance/btcusdt-quotes.parquet"], "nautilus-quotes",
                           code_version=version, echo=None)  # fmt: skip
    trades = import_preset(log, "n", [NAUTILUS / "binance/btcusdt-trades.parquet"], "nautilus-trades",
                           code_version=version, instrument="BTCUSDT", echo=None)  # fmt: skip
    tardis = import_preset(log, "t", [NAUTILUS / "tardis_legacy/quotes.csv"], "tardis-quotes",
                           code_version=version, echo=None)  # fmt: skip
    assert quotes.bad_row_count == trades.bad_row_count == tardis.bad_row_count == 0
    # each stream starts with the instrument's definition
    assert log.end_offset("n", "md.binance-spot.BTCUSDT.quotes") == 1 + 451
    assert log.end_offset("n", "md.binance-spot.BTCUSDT.trades") == 1 + 2_001
    assert log.end_offset("t", "md.binance-usdm.BTCUSDT.quotes") == 1 + 9_999
    first = decode(log.read("n", "md.binance-spot.BTCUSDT.quotes", 1).__next__().record.payload)
    assert isinstance(first, QuoteTick)  # floats in the parquet come back as their shortest decimal text
    assert (str(first.bid_price), str(first.ask_size)) == ("39432.99", "0.066851")
    assert first.envelope.event_time_ns == 1_610_064_001_076_000_000
    trade = decode(log.read("n", "md.binance-spot.BTCUSDT.trades", 1).__next__().record.payload)
    assert isinstance(trade, TradeTick) and trade.aggressor_side is Side.SELL  # buyer_maker True
    # the two streams interleave through the merge
    sources = {
        s: ((r.record.event_time_ns, r) for r in log.read("n", s))
        for s in ["md.binance-spot.BTCUSDT.quotes", "md.binance-spot.BTCUSDT.trades"]
    }
    assert sum(1 for _ in merge_pairs(sources, sorted(sources))) == 2 + 2_452


def test_tabular_csv_bad_rows_have_line_numbers(tmp_path: Path, log: SqliteEventLog) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "x,BTCUSDT,1,1000,1,buy,100.5,0.1\n"
        "x,BTCUSDT,2,2000,2,sideways,100.5,0.1\n"
        "x,BTCUSDT,3,abc,3,sell,100.5,0.1\n"
        "x,BTCUSDT,4,4000,4,sell,,0.1\n"
        "x,BTCUSDT,5,500,5,sell,100,0.1\n"
        "x,BTCUSDT,6,6000,6,sell,100,0.2\n"
    )
    report = import_table(log, "s", [path], columns=PRESETS["tardis-trades"].columns, venue="binance-usdm",
                          code_version=version, echo=None)  # fmt: skip
    assert [(r.line, r.reason) for r in report.bad_rows] == [
        (3, "bad side"),
        (4, "bad time"),
        (5, "empty field"),
        (6, "time goes backwards"),
    ]
    assert log.end_offset("s", "md.binance-usdm.BTCUSDT.trades") == 1 + 2


def test_export_round_trip(tmp_path: Path, log: SqliteEventLog) -> None:
    import_binance_ws(log, "s", [HFT / "spot/btcusdt_20240808.gz"], code_version=version, echo=None)
    out = tmp_path / "s.parquet"
    rows = export_session(log, "s", out, chunk_rows=7_000)
    assert rows == 41_252  # every line, the instrument's definition, SessionStarted and FilesImported
    frame = pl.read_parquet(out)
    assert frame.height == rows
    assert frame.group_by("type").len().sort("type").to_dicts() == [
        {"type": "market.book_delta", "len": 3_451}, {"type": "market.book_snapshot", "len": 1},
        {"type": "market.instrument_defined", "len": 1}, {"type": "market.quote", "len": 28_040},
        {"type": "market.trade", "len": 9_757},
        {"type": "session.files_imported", "len": 1}, {"type": "session.started", "len": 1},
    ]  # fmt: skip
    quotes = frame.filter(pl.col("type") == "market.quote")
    assert quotes["bid_price"][0] == "61837.63" and quotes["venue"][0] == "binance-spot"
    assert json.loads(quotes["payload"][0])["venue_update_id"] == 50093239212
    only = export_session(log, "s", tmp_path / "one.parquet", streams=[SESSION_STREAM])
    assert only == 2
    buf = io.BytesIO((tmp_path / "one.parquet").read_bytes())
    assert pl.read_parquet(buf)["stream"].to_list() == [SESSION_STREAM, SESSION_STREAM]
