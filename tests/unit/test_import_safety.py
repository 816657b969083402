"""Imports that cannot lie: all or nothing, each file once, file-level errors naming the file, rows refused by
reason, one feed and one time line per stream, and a backtest refusing a session without its data.

Every test asserts the message, and what the log holds afterwards."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from adapters.entrypoints.commands import load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.common import SESSION_STREAM, FileError, ImportRefused
from adapters.importers.lean import import_lean_quotes
from adapters.importers.tabular import PRESETS, import_preset, import_table
from adapters.instruments.catalog import InstrumentCatalog, load_catalog
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import MissingInputData, run_backtest
from application.ports import LogRecord
from application.run_config import RunConfig
from application.session_run import RunParameters, market_data_streams
from domain.events import FilesImported, QuoteTick, TradeTick, decode

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CSE_SHARED_DATA") or ROOT.parent / "shared" / "data")
HFT = DATA / "hftbacktest"


def version() -> str:
    return "test-build"


@pytest.fixture
def log(tmp_path: Path) -> SqliteEventLog:
    return SqliteEventLog(tmp_path / "events.sqlite")


def head_gz(src: Path, dst: Path, lines: int) -> Path:
    """The first `lines` lines of a capture, as a capture of its own."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(src, "rt") as fh, gzip.open(dst, "wt") as out:
        for _, line in zip(range(lines), fh, strict=False):
            out.write(line)
    return dst


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def at(path: Path) -> str:
    """A path as a regular expression matching it."""
    return re.escape(str(path))


def holdings(log: SqliteEventLog) -> dict[str, dict[str, int]]:
    """Every session's streams and their record counts."""
    return {s: {name: log.end_offset(s, name) for name in log.streams(s)} for s in log.sessions()}


def specified(tmp_path: Path, *venues: str) -> InstrumentCatalog:
    """The shipped specifications plus BTCUSDT on each of `venues` (a user's own file, as `--instruments`)."""
    spec = tmp_path / "venues-specs.toml"
    spec.write_text("".join(
        f'[[instrument]]\nvenue = "{v}"\ninstrument = "BTCUSDT"\nbase = "BTC"\nquote = "USDT"\nsettlement = "USDT"\n'
        'kind = "spot"\ncontract_size = "1"\ntick_size = "0.01"\nlot_size = "0.00001"\nmin_notional = "5"\n'
        'maker_fee_bps = "10"\ntaker_fee_bps = "10"\nsource = "test"\n\n' for v in venues
    ))  # fmt: skip
    return load_catalog([spec])


def ws(log: SqliteEventLog, paths: list[Path], session: str = "s", **kw: object) -> int:
    return import_binance_ws(
        log, session, paths, code_version=version, echo=None, batch_size=500, **kw
    ).records  # type: ignore[arg-type]


# -- all or nothing, each file once ----------------------------------------------------------------------------


def test_truncated_gzip_is_refused_whole_and_the_good_file_then_imports_once(
    tmp_path: Path, log: SqliteEventLog
) -> None:
    good = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 3_000)
    cut = truncate(good, tmp_path / "cut" / "spot" / "btcusdt_20240808.gz", 0.6)
    with pytest.raises(
        FileError, match=rf"^{at(cut)}: truncated or corrupt gzip after line \d+ \(Compressed file"
    ):
        ws(log, [cut])  # batches of 500: several were appended inside the transaction before the error
    assert holdings(log) == {}

    assert ws(log, [good]) == 3_000
    with pytest.raises(
        FileError, match=rf"^{at(good)}: already imported into session 's' \(as btcusdt_20240808.gz"
    ):
        ws(log, [good])
    assert holdings(log) == {"s": {"md.binance-spot.BTCUSDT": 1 + 3_000, SESSION_STREAM: 2}}
    ids = Counter(
        decode(r.record.payload).envelope.event_id for r in log.read("s", "md.binance-spot.BTCUSDT")
    )
    assert len(ids) == 1 + 3_000  # no record stored twice


def test_a_bad_later_file_rolls_back_the_earlier_files(tmp_path: Path, log: SqliteEventLog) -> None:
    day1 = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 2_000)
    day2 = truncate(HFT / "spot/btcusdt_20240809.gz", tmp_path / "spot" / "btcusdt_20240809.gz", 0.3)
    with pytest.raises(FileError, match=rf"^{at(day2)}: truncated"):
        ws(log, [day1, day2])
    assert holdings(log) == {}


def test_a_renamed_copy_or_the_same_file_twice_is_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    good = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 500)
    with pytest.raises(FileError, match=rf"^{at(good)}: same content as {at(good)}"):
        ws(log, [good, good])
    assert holdings(log) == {}
    ws(log, [good])
    copy = tmp_path / "spot" / "renamed.gz"
    shutil.copy(good, copy)
    with pytest.raises(
        FileError, match=rf"^{at(copy)}: already imported into session 's' \(as btcusdt_20240808.gz, sha256 "
    ):
        ws(log, [copy])
    assert holdings(log) == {"s": {"md.binance-spot.BTCUSDT": 1 + 500, SESSION_STREAM: 2}}
    files_imported = decode(list(log.read("s", SESSION_STREAM))[1].record.payload)
    assert isinstance(files_imported, FilesImported)
    assert files_imported.files[0].name == "btcusdt_20240808.gz" and len(files_imported.files[0].sha256) == 64


def test_an_import_into_a_backtest_session_is_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    good = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "a.gz", 50)
    ws(log, [good], session="in")
    log.append("bt", [LogRecord(SESSION_STREAM, "bt", "session.started", 1, next(iter(log.read("in", SESSION_STREAM))).record.payload.replace(b'"import"', b'"backtest"'))])  # fmt: skip
    with pytest.raises(ImportRefused, match="session 'bt' is a backtest session, not an import"):
        ws(log, [good], session="bt")
    assert log.streams("bt") == [SESSION_STREAM]


# -- file-level errors -----------------------------------------------------------------------------------------

TARDIS_QUOTES = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"


def tardis_quotes(log: SqliteEventLog, paths: list[Path], session: str = "s") -> int:
    return import_preset(log, session, paths, "tardis-quotes", code_version=version, echo=None).records


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty file \\(no header line\\)"),
        ("header-only.csv", TARDIS_QUOTES, "no data rows \\(empty file\\)"),
        ("no-bid.csv", TARDIS_QUOTES.replace(",bid_amount", "") + "x,BTCUSDT,1,1,1,2,1\n",
         ", line 1: missing column\\(s\\) bid_amount; the file has exchange, symbol, timestamp, local_timestamp, "
         "ask_amount, ask_price, bid_price "),
        ("latin1.csv", TARDIS_QUOTES + "x,BTC\xe9,1,1,1,2,1,1\n", "cannot read: "),
        ("quotes.parquet", TARDIS_QUOTES, "cannot read: ArrowInvalid: Parquet magic bytes not found"),
    ],
)  # fmt: skip
def test_file_level_errors_name_the_file_and_store_nothing(
    tmp_path: Path, log: SqliteEventLog, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(
        FileError, match=f"^{at(path)}{message}" if message.startswith(",") else f"^{at(path)}: {message}"
    ):
        tardis_quotes(log, [path])
    assert holdings(log) == {}


def test_parquet_missing_columns_and_a_folder_and_a_csv_given_as_capture(
    tmp_path: Path, log: SqliteEventLog
) -> None:
    parquet = tmp_path / "quotes.parquet"
    pl.DataFrame({"timestamp": [1], "symbol": ["BTC/USDT"], "bid": [1.0]}).write_parquet(parquet)
    with pytest.raises(
        FileError,
        match=rf"^{at(parquet)}: missing column\(s\) bid_size, ask, ask_size; the file has timestamp, symbol, bid ",
    ):
        import_preset(log, "s", [parquet], "nautilus-quotes", code_version=version, echo=None)
    with pytest.raises(FileError, match=rf"^{at(tmp_path)}: cannot read: Is a directory"):
        tardis_quotes(log, [tmp_path])
    csv = tmp_path / "spot" / "quotes.gz"
    csv.parent.mkdir()
    csv.write_text(TARDIS_QUOTES)
    with pytest.raises(FileError, match=rf"^{at(csv)}: not a gzip file"):
        ws(log, [csv])
    assert holdings(log) == {}


# -- refused rows ----------------------------------------------------------------------------------------------


def test_impossible_quotes_and_trades_are_refused_and_counted_by_reason(
    tmp_path: Path, log: SqliteEventLog
) -> None:
    quotes = tmp_path / "quotes.csv"
    quotes.write_text(
        TARDIS_QUOTES + "binance-futures,BTCUSDT,0,1000,0.5,101,100,0.25\n"  # line 2: good
        "binance-futures,BTCUSDT,0,2000,0.5,101,-100,0.25\n"  # 3: negative bid
        "binance-futures,BTCUSDT,0,3000,0.5,0,100,0.25\n"  # 4: zero ask
        "binance-futures,BTCUSDT,0,4000,0.5,99,100,0.25\n"  # 5: crossed
        "binance-futures,BTCUSDT,0,5000,0.5,100,100,0.25\n"  # 6: locked
        "binance-futures,BTCUSDT,0,6000,-0.5,101,100,0.25\n"  # 7: negative ask size
        "binance-futures,BTCUSDT,0,7000,0,101,100.5,0\n"  # 8: good (an empty side has size 0)
    )
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance-futures,BTCUSDT,0,1000,1,buy,100,0.1\n"
        "binance-futures,BTCUSDT,0,2000,2,sell,-100,0.1\n"
        "binance-futures,BTCUSDT,0,3000,3,sell,100,0\n"
        "binance-futures,BTCUSDT,0,4000,4,sell,100,-0.1\n"
    )
    q = import_table(log, "s", [quotes], columns=PRESETS["tardis-quotes"].columns, venue="v", code_version=version, echo=None, instruments=specified(tmp_path, "v"))  # fmt: skip
    t = import_table(log, "s", [trades], columns=PRESETS["tardis-trades"].columns, venue="v", code_version=version, echo=None, instruments=specified(tmp_path, "v"))  # fmt: skip
    assert [(r.line, r.reason, r.detail) for r in q.bad_rows] == [
        (3, "price not positive", "bid_price=-100"),
        (4, "price not positive", "ask_price=0"),
        (5, "crossed quote", "bid 100 > ask 99"),
        (6, "locked quote", "bid = ask = 100"),
        (7, "size negative", "ask_size=-0.5"),
    ]
    assert q.files[0].refused == {
        "price not positive": 2,
        "crossed quote": 1,
        "locked quote": 1,
        "size negative": 1,
    }
    assert t.bad_by_reason == {"price not positive": 1, "size not positive": 2}
    assert (
        "quotes.csv (binance-futures): 2 records, 5 rows refused; 2 x price not positive; 1 x crossed quote"
        in q.summary()
    )
    stored = [decode(r.record.payload) for r in log.read("s", "md.v.BTCUSDT.quotes")]
    assert [(str(e.bid_price), str(e.ask_price)) for e in stored if isinstance(e, QuoteTick)] == [
        ("100", "101"), ("100.5", "101")
    ]  # fmt: skip
    trades_stored = [decode(r.record.payload) for r in log.read("s", "md.v.BTCUSDT.trades")]
    assert [e.venue_trade_id for e in trades_stored if isinstance(e, TradeTick)] == ["1"]


def test_impossible_book_levels_are_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    with gzip.open(HFT / "spot/btcusdt_20240808.gz", "rt") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(40)]
    depth = next(i for i, line in enumerate(lines) if "@depth" in line and i > 5)
    ticker = next(i for i, line in enumerate(lines) if "@bookTicker" in line and i > 5)
    snapshot = next(i for i, line in enumerate(lines) if "lastUpdateId" in line)
    lines[depth] = lines[depth].replace('"b":[["', '"b":[["-', 1)
    lines[ticker] = lines[ticker].replace('"B":"', '"B":"-', 1)
    time_, _, body = lines[snapshot].partition(" ")
    lines[snapshot] = f'{time_} {{"lastUpdateId":1,"bids":[["101.5","1"]],"asks":[["101.0","1"]]}}'
    path = tmp_path / "spot" / "btcusdt_20240808.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines) + "\n")
    report = import_binance_ws(log, "s", [path], code_version=version, echo=None)
    got = {r.line: (r.reason, r.detail.split("=")[0]) for r in report.bad_rows}
    assert got == {
        depth + 1: ("price not positive", "bid level price"),
        ticker + 1: ("size negative", "bid_size"),
        snapshot + 1: ("crossed snapshot", "best bid 101.5 >"),
    }
    assert report.records == 37 and log.end_offset("s", "md.binance-spot.BTCUSDT") == 1 + 37


def test_a_file_whose_every_row_is_refused_is_refused_whole(tmp_path: Path, log: SqliteEventLog) -> None:
    good = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 100)
    bad = tmp_path / "spot" / "btcusdt_20240809.gz"
    with gzip.open(bad, "wt") as out:
        out.write("".join(f"{1723161904535092233 + i} not json\n" for i in range(7)) + "garbage\n")
    with pytest.raises(
        FileError,
        match=rf"^{at(bad)}: no valid row: all 8 refused \(7 x invalid JSON, 1 x bad receive time\)$",
    ):
        ws(log, [good, bad])
    assert holdings(log) == {}


# -- one feed, one time line per stream -------------------------------------------------------------------------


def test_two_venues_under_one_venue_are_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    spot = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 1_000)
    usdm = head_gz(HFT / "usdm/btcusdt_20240808.gz", tmp_path / "usdm" / "btcusdt_20240808.gz", 1_000)
    message = rf"^{at(usdm)}: a binance-usdm file, but md.x.BTCUSDT already holds binance-spot data \(from {at(spot)}\)"
    with pytest.raises(FileError, match=message):
        ws(log, [spot, usdm], venue="x", instruments=specified(tmp_path, "x", "y"))
    assert holdings(log) == {}
    ws(log, [spot], venue="x", instruments=specified(tmp_path, "x", "y"))  # the same across imports: the session records each file's feed
    message = rf"^{at(usdm)}: a binance-usdm file, but md.x.BTCUSDT already holds binance-spot data \(from btcusdt_20240808.gz\)"
    with pytest.raises(FileError, match=message):
        ws(log, [usdm], venue="x", instruments=specified(tmp_path, "x", "y"))
    assert holdings(log) == {"s": {"md.x.BTCUSDT": 1 + 1_000, SESSION_STREAM: 2}}
    assert ws(log, [usdm], venue="y", instruments=specified(tmp_path, "x", "y")) == 1_000  # under a venue name of its own


def test_files_out_of_time_order_are_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    day1 = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 300)
    day2 = head_gz(HFT / "spot/btcusdt_20240809.gz", tmp_path / "spot" / "btcusdt_20240809.gz", 300)
    with pytest.raises(
        FileError,
        match=rf"^{at(day1)}, line 1: starts at 2024-08-08T23:54:13.937085768Z in md.binance-spot.BTCUSDT, before the end of the data it already holds from {at(day2)} \(2024-08-09T00:00:",
    ):
        ws(log, [day2, day1])
    assert holdings(log) == {}
    ws(log, [day2])
    with pytest.raises(
        FileError,
        match=rf"^{at(day1)}, line 1: starts at .* before the end of the data it already holds from btcusdt_20240809.gz \(2024-08-09T00:00:",
    ):
        ws(log, [day1])
    ws(log, [day1], session="ordered")
    ws(log, [day2], session="ordered")
    assert holdings(log)["ordered"] == {"md.binance-spot.BTCUSDT": 1 + 600, SESSION_STREAM: 3}


def test_a_capture_in_the_folder_of_another_feed_is_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    usdm = head_gz(HFT / "usdm/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 200)
    with pytest.raises(
        FileError,
        match=rf"^{at(usdm)}: its folder says binance-spot but its messages are binance-usdm's; pass --venue",
    ):
        ws(log, [usdm])
    elsewhere = head_gz(
        HFT / "cm/btcusd_perp_20240808.gz", tmp_path / "captures" / "btcusd_perp_20240808.gz", 200
    )
    ws(log, [elsewhere])  # an unknown folder: the content names the venue
    assert log.streams("s") == ["md.binance-coinm.BTCUSD_PERP", SESSION_STREAM]


def test_a_tabular_file_of_two_exchanges_is_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(
        TARDIS_QUOTES + "binance-futures,BTCUSDT,0,1000,1,101,100,1\nbybit,BTCUSDT,0,2000,1,101,100,1\n"
    )
    with pytest.raises(
        FileError, match=rf"^{at(path)}, line 3: rows of two exchanges \(binance-futures, then bybit\)"
    ):
        tardis_quotes(log, [path])
    assert holdings(log) == {}


# -- the event log's transaction --------------------------------------------------------------------------------


def test_a_transaction_commits_all_appends_or_none(log: SqliteEventLog) -> None:
    record = LogRecord("a", "k", "t", 1, b"{}")
    with pytest.raises(RuntimeError, match="boom"), log.transaction():
        log.append("s", [record, record])
        assert log.end_offset("s", "a") == 2  # visible inside
        raise RuntimeError("boom")
    assert log.sessions() == []
    with log.transaction():
        log.append("s", [record])
        log.append("s", [record])
    assert log.end_offset("s", "a") == 2


# -- a backtest refuses a session without its data --------------------------------------------------------------


def test_backtest_refuses_a_session_lacking_a_venue_or_the_instrument(
    tmp_path: Path, log: SqliteEventLog
) -> None:
    spot = head_gz(HFT / "spot/btcusdt_20240808.gz", tmp_path / "spot" / "btcusdt_20240808.gz", 200)
    ws(log, [spot], session="spot")
    config = load_run_config(ROOT / "deploy" / "samples" / "spread-demo.toml")
    parameters = RunParameters("spot", market_data_streams(log, "spot"), config)
    with pytest.raises(
        MissingInputData,
        match=r"^session 'spot' has no market data of BTCUSDT \(strategy.instrument\) on binance-usdm \(configured venues\); it has: md.binance-spot.BTCUSDT \(201 records\)$",
    ):
        run_backtest(log, parameters, "bt", simulated_venues, "test")
    eth = RunConfig.model_validate(
        {**config.model_dump(), "strategy": {**config.strategy.model_dump(), "instrument": "ETHUSDT"}}
    )
    with pytest.raises(MissingInputData, match="no market data of ETHUSDT .* on binance-spot, binance-usdm"):
        run_backtest(log, RunParameters("spot", parameters.streams, eth), "bt", simulated_venues, "test")
    assert log.sessions() == ["spot"]  # nothing of the refused runs is stored


def test_lean_files_that_are_not_quote_bar_zips_are_refused(tmp_path: Path, log: SqliteEventLog) -> None:
    folder = tmp_path / "cryptofuture" / "bybit" / "minute" / "btcusd"
    folder.mkdir(parents=True)
    not_zip = folder / "20221213_quote.zip"
    not_zip.write_text("60000,1,1,1,1,5,2,2,2,2,6\n")
    with pytest.raises(FileError, match=rf"^{at(not_zip)}: not a zip file"):
        import_lean_quotes(log, "s", [not_zip], code_version=version, echo=None)
    two = folder / "20221214_quote.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.csv", "60000,1,1,1,1,5,2,2,2,2,6\n")
        z.writestr("b.csv", "60000,1,1,1,1,5,2,2,2,2,6\n")
    with pytest.raises(
        FileError, match=rf"^{at(two)}: expected one CSV in the zip, found \['a.csv', 'b.csv'\]"
    ):
        import_lean_quotes(log, "s", [two], code_version=version, echo=None)
    loose = tmp_path / "20221213_quote.zip"
    with pytest.raises(
        FileError, match=rf"^{at(loose)}: not a Lean <market>/<exchange>/<resolution>/\.\.\. data path"
    ):
        import_lean_quotes(log, "s", [loose], code_version=version, echo=None)
    assert holdings(log) == {}
