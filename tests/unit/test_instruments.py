"""Instruments as events: the shipped specifications, the importers' InstrumentDefined, refusals, a user's own
file, and COIN-M data accounted as the inverse contract it is (issue 10 item 4)."""

from __future__ import annotations

import re
import uuid
import zipfile
from decimal import Decimal as D
from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.importers.binance_ws import import_binance_ws
from adapters.instruments.catalog import (
    SHIPPED_SPECS,
    SpecificationFileError,
    UnknownInstrument,
    load_catalog,
)
from adapters.simulated_venue import FeeSchedule, SimulatedVenue, SimulatedVenueConfig
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import (
    Envelope,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    OrderFillEvent,
    PlaceOrder,
    QuoteTick,
    decode,
    input_event_id,
)
from domain.market_view import ReferenceMarketView
from domain.portfolio import PortfolioConfig, PortfolioDecider
from domain.values import OrderType, Side

pytestmark = pytest.mark.unit

DATA = Path(__file__).parents[2].parent / "shared" / "data"
COINM_CAPTURE = DATA / "hftbacktest" / "cm" / "btcusd_perp_20240808.gz"


def definition(venue: str, instrument: str) -> InstrumentDefined:
    envelope = Envelope(event_id=input_event_id("s", "x", 0), session_id="s", sequence=0, event_time_ns=0,
                        ingest_time_ns=0, source="test")  # fmt: skip
    return load_catalog().definition(venue, instrument, "test")(envelope)


def test_shipped_binance_specifications_match_the_published_filters_and_fees() -> None:
    """Binance exchangeInfo filters and the regular-user fee schedule, as cited in specs.toml."""
    fields = ("kind", "base", "quote", "settlement", "contract_size", "tick_size", "lot_size", "min_notional",
              "maker_fee_bps", "taker_fee_bps")  # fmt: skip
    expected = {
        ("binance-spot", "BTCUSDT"): ("spot", "BTC", "USDT", "USDT", 1, D("0.01"), D("0.00001"), 5, 10, 10),
        ("binance-usdm", "BTCUSDT"): ("linear", "BTC", "USDT", "USDT", 1, D("0.1"), D("0.001"), 100, 2, 5),
        ("binance-coinm", "BTCUSD_PERP"): ("inverse", "BTC", "USD", "BTC", 100, D("0.1"), 1, 0, 2, 5),
    }
    for (venue, instrument), values in expected.items():
        spec = definition(venue, instrument)
        assert tuple(getattr(spec, f) for f in fields) == values, (venue, instrument)


def test_every_shipped_entry_is_valid_and_says_where_its_numbers_come_from() -> None:
    import tomllib

    entries = tomllib.loads(SHIPPED_SPECS.read_text())["instrument"]
    assert len({(e["venue"], e["instrument"]) for e in entries}) == len(entries)  # no duplicates
    for entry in entries:
        assert len(entry["source"]) > 40, entry["instrument"]
        spec = definition(entry["venue"], entry["instrument"])
        if spec.kind == "inverse":
            assert spec.settlement == spec.base


@pytest.mark.parametrize(
    ("path", "venue", "instrument", "kind"),
    [
        ("quantconnect-lean/cryptofuture/binance/minute/btcusd/20221213_quote.zip", "binance-cryptofuture",
         "BTCUSD", "inverse"),
        ("quantconnect-lean/cryptofuture/bybit/minute/btcusd/20221213_quote.zip", "bybit-cryptofuture", "BTCUSD",
         "inverse"),
        ("quantconnect-lean/cryptofuture/bybit/minute/btcusdt/20221213_quote.zip", "bybit-cryptofuture",
         "BTCUSDT", "linear"),
        ("quantconnect-lean/crypto/bybit/minute/btcusdt/20221213_quote.zip", "bybit-crypto", "BTCUSDT", "spot"),
        ("quantconnect-lean/cryptofuture/binance/minute/adausdt/20221213_quote.zip", "binance-cryptofuture",
         "ADAUSDT", "linear"),
        ("quantconnect-lean/cryptofuture/dydx/minute/btcusd/20260101_quote.zip", "dydx-cryptofuture", "BTCUSD",
         "linear"),
        ("quantconnect-lean/crypto/coinbase/minute/btcusd/20170903_quote.zip", "coinbase-crypto", "BTCUSD",
         "spot"),
        ("quantconnect-lean/crypto/coinbase/minute/ethusd/20170903_quote.zip", "coinbase-crypto", "ETHUSD",
         "spot"),
        ("quantconnect-lean/crypto/coinbase/minute/ltcusd/20180404_quote.zip", "coinbase-crypto", "LTCUSD",
         "spot"),
        ("quantconnect-lean/crypto/coinbase/minute/btceur/20180404_quote.zip", "coinbase-crypto", "BTCEUR",
         "spot"),
    ],
)  # fmt: skip
def test_every_shared_minute_file_imports_with_its_definition_first(
    tmp_path: Path, path: str, venue: str, instrument: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    assert (DATA / path).is_file(), f"recorded data missing: {DATA / path}"
    assert main(["import", str(DATA / path), "--session", "m"]) == 0
    log = SqliteEventLog(tmp_path / "events.sqlite")
    first, second = (decode(r.record.payload) for r in list(log.read("m", f"md.{venue}.{instrument}", 0))[:2])
    assert isinstance(first, InstrumentDefined) and (first.venue, first.instrument, first.kind) == (
        venue, instrument, kind)  # fmt: skip
    assert isinstance(second, QuoteTick) and first.envelope.event_time_ns == second.envelope.event_time_ns


def lean_zip(root: Path, exchange: str, symbol: str) -> Path:
    path = root / "crypto" / exchange / "minute" / symbol / "20221213_quote.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("q.csv", "60000,1,1,1,100.5,5,2,2,2,100.6,6\n120000,1,1,1,100.6,5,2,2,2,100.7,6\n")
    return path


def test_a_symbol_nobody_specified_is_refused_naming_symbol_venue_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path / "home"))
    path = lean_zip(tmp_path, "kraken", "xbtusd")
    assert main(["import", str(path), "--session", "k"]) != 0
    err = capsys.readouterr().err
    assert "'XBTUSD'" in err and "'kraken-crypto'" in err and str(path) in err and "--instruments" in err
    assert "Traceback" not in err
    log = SqliteEventLog(tmp_path / "home" / "events.sqlite")
    assert log.sessions() == []  # nothing stored


def test_a_users_own_specification_file_defines_a_new_symbol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path / "home"))
    path = lean_zip(tmp_path, "kraken", "xbtusd")
    mine = tmp_path / "mine.toml"
    mine.write_text(
        '[[instrument]]\nvenue = "kraken-crypto"\ninstrument = "XBTUSD"\nbase = "BTC"\nquote = "USD"\n'
        'settlement = "USD"\nkind = "spot"\ncontract_size = "1"\ntick_size = "0.1"\nlot_size = "0.00000001"\n'
        'min_notional = "0"\nmaker_fee_bps = "25"\ntaker_fee_bps = "40"\nsource = "Kraken AssetPairs XBTUSD, '
        'pair_decimals 1, lot_decimals 8; fee schedule 0.25% / 0.40%"\n'
    )
    assert main(["import", str(path), "--session", "k", "--instruments", str(mine)]) == 0
    log = SqliteEventLog(tmp_path / "home" / "events.sqlite")
    spec = decode(next(iter(log.read("k", "md.kraken-crypto.XBTUSD"))).record.payload)
    assert isinstance(spec, InstrumentDefined) and (spec.base, spec.quote, spec.tick_size) == (
        "BTC",
        "USD",
        D("0.1"),
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[instrument]]\nvenue = "v"\n', "missing fields"),
        ("not toml [", "not valid TOML"),
        ("", "no [[instrument]] entries"),
    ],
)
def test_a_bad_specification_file_is_refused_with_its_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    message: str,
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path / "home"))
    mine = tmp_path / "mine.toml"
    mine.write_text(body)
    with pytest.raises(SpecificationFileError, match=re.escape(message)):
        load_catalog([mine])
    assert main(["import", str(lean_zip(tmp_path, "bybit", "btcusdt")), "--session", "b", "--instruments",
                 str(mine)]) != 0  # fmt: skip
    err = capsys.readouterr().err
    assert str(mine) in err and message in err


def test_float_amounts_and_impossible_values_in_a_specification_are_refused(tmp_path: Path) -> None:
    good = SHIPPED_SPECS.read_text().split("\n\n[[instrument]]")[1]  # the first entry (binance-spot BTCUSDT)
    for change, message in [(('tick_size = "0.01"', "tick_size = 0.01"), "TOML floats"),
                            (('lot_size = "0.00001"', 'lot_size = "0"'), "must be positive"),
                            (('settlement = "USDT"', 'settlement = "BTC"'), "spot settles in the quote")]:  # fmt: skip
        mine = tmp_path / "mine.toml"
        mine.write_text("[[instrument]]" + good.replace(*change))
        with pytest.raises(SpecificationFileError, match=message):
            load_catalog([mine])


def test_unknown_instrument_from_the_api_names_the_data_file(tmp_path: Path) -> None:
    with pytest.raises(
        UnknownInstrument, match=r"cap\.gz: no specification for instrument 'ETHUSDT' on venue 'x'"
    ):
        load_catalog().definition("x", "ETHUSDT", "cap.gz")


def test_coinm_capture_backtests_with_inverse_accounting(tmp_path: Path) -> None:
    """Binance COIN-M BTCUSD_PERP: the importer defines it from the capture and specs.toml (inverse, 100 USD a
    contract, settled in BTC); a simulated round trip of 10 contracts on the recorded book is accounted in BTC:
    PnL = sum over buys of 100*q/p - sum over sells of 100*q/p, fees 5 bps of the BTC value, in BTC."""
    assert COINM_CAPTURE.is_file(), f"recorded COIN-M capture missing: {COINM_CAPTURE}"
    log = SqliteEventLog(tmp_path / "events.sqlite")
    import_binance_ws(log, "cm", [COINM_CAPTURE], code_version=lambda: "test", echo=None)
    events = [decode(r.record.payload) for r in log.read("cm", "md.binance-coinm.BTCUSD_PERP")]
    spec = events[0]
    assert isinstance(spec, InstrumentDefined)
    assert (spec.kind, spec.base, spec.quote, spec.settlement, spec.contract_size) == (
        "inverse", "BTC", "USD", "BTC", 100)  # fmt: skip

    fees = {"binance-coinm": FeeSchedule(spec.maker_fee_bps, spec.taker_fee_bps)}  # the specification's tier
    venue = SimulatedVenue("binance-coinm", SimulatedVenueConfig(fees=fees))
    portfolio = PortfolioDecider(
        PortfolioConfig(quote_currency="USD", initial_cash=(("binance-coinm", "BTC", D(1)),))
    )
    state = portfolio.initial_state()
    view = ReferenceMarketView()
    fills: list[OrderFillEvent] = []
    samples: list[EquitySampled] = []

    def consume(batch: list[EventBase]) -> None:
        for event in batch:
            view.apply(event)
            samples.extend(e for e in portfolio.decide(state, event, view) if isinstance(e, EquitySampled))
            portfolio.evolve(state, event, view)
            if isinstance(event, OrderFillEvent):
                fills.append(event)

    def order(n: int, side: Side, at: EventBase) -> PlaceOrder:
        return PlaceOrder(envelope=at.envelope.model_copy(update={"event_id": uuid.UUID(int=n)}),
                          order_id=uuid.UUID(int=n), account="a", strategy_id="t", venue="binance-coinm",
                          instrument="BTCUSD_PERP", side=side, order_type=OrderType.MARKET, quantity=D(10))  # fmt: skip

    buy_at, sell_at = 2_000, 40_000
    for index, event in enumerate(events):
        consume(venue.drain(event.envelope.event_time_ns))
        consume(venue.on_market(event))
        consume([event])
        if index in (buy_at, sell_at):
            consume(venue.submit(order(index, Side.BUY if index == buy_at else Side.SELL, event)))
    consume(venue.drain(events[-1].envelope.event_time_ns + 10**9))

    bought = sum((f.quantity for f in fills if f.side is Side.BUY), D(0))
    sold = sum((f.quantity for f in fills if f.side is Side.SELL), D(0))
    assert bought == sold == 10, [(f.side, f.price, f.quantity) for f in fills]
    assert all(f.fee_currency == "BTC" for f in fills)
    value = {
        f.venue_trade_id: D(100) * f.quantity / f.price for f in fills
    }  # BTC value of each fill, by hand
    pnl = sum(value[f.venue_trade_id] * (1 if f.side is Side.BUY else -1) for f in fills)
    paid = sum(value[f.venue_trade_id] * D(5) / D(10_000) for f in fills)  # taker 5 bps, in BTC
    assert abs(state.realized["BTC"] - pnl) < D("1e-11")
    assert abs(state.fees["BTC"] - paid) < D("1e-14")
    assert state.positions[("binance-coinm", "BTCUSD_PERP")].quantity == 0
    assert state.cash == {("binance-coinm", "BTC"): 1 + state.realized["BTC"] - state.fees["BTC"]}
    # equity is reported in USD at the recorded COIN-M mid, and says so
    last = samples[-1]
    (btc,) = last.valuations
    assert (btc.currency, btc.price_instrument) == ("BTC", "binance-coinm:BTCUSD_PERP")
    assert btc.price is not None and last.equity == btc.balance * btc.price


def test_bitmex_xbtusd_is_the_inverse_btc_swap_not_xb_in_tusd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    path = DATA / "nautilus_trader/tests/test_data/tardis/bitmex_trades_XBTUSD.csv"
    assert path.is_file(), f"recorded data missing: {path}"
    assert (
        main(["import", str(path), "--session", "x", "--format", "tardis-trades", "--venue", "bitmex"]) == 0
    )
    log = SqliteEventLog(tmp_path / "events.sqlite")
    spec = decode(next(iter(log.read("x", "md.bitmex.XBTUSD.trades"))).record.payload)
    assert isinstance(spec, InstrumentDefined)
    assert (spec.base, spec.quote, spec.settlement, spec.kind, spec.contract_size) == ("BTC", "USD", "BTC",
                                                                                        "inverse", 1)  # fmt: skip
    assert spec.maker_fee_bps == D("-2.5")  # a maker rebate


def test_a_backtest_refuses_a_session_without_instrument_definitions(tmp_path: Path) -> None:
    from adapters.entrypoints.commands import load_run_config, simulated_venues
    from application.backtest import run_backtest
    from application.ports import LogRecord
    from application.session_run import RunParameters, market_data_streams
    from domain.events import encode

    config = Path(__file__).parents[2] / "deploy" / "samples" / "spread-demo.toml"
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        envelope = Envelope(event_id=input_event_id("old", "md.binance-spot.BTCUSDT", 0), session_id="old",
                            sequence=0, event_time_ns=1, ingest_time_ns=1, source="test")  # fmt: skip
        quote = QuoteTick(envelope=envelope, venue="binance-spot", instrument="BTCUSDT", bid_price=D(1),
                          bid_size=D(1), ask_price=D(2), ask_size=D(1))  # fmt: skip
        perp = quote.model_copy(update={"venue": "binance-usdm"})
        log.append("old", [LogRecord("md.binance-spot.BTCUSDT", "k", quote.type, 1, encode(quote)),
                           LogRecord("md.binance-usdm.BTCUSDT", "k", perp.type, 1, encode(perp))])  # fmt: skip
        parameters = RunParameters("old", market_data_streams(log, "old"), load_run_config(config))
        with pytest.raises(
            ValueError, match="md.binance-spot.BTCUSDT of session 'old' does not start with an"
        ):
            run_backtest(log, parameters, "bt", simulated_venues, "test")
        assert log.streams("bt") == []  # nothing written


@pytest.mark.parametrize("capture", ["spot/btcusdt_20240808.gz", "usdm/btcusdt_20240808.gz",
                                     "cm/btcusd_perp_20240808.gz"])  # fmt: skip
def test_the_exchanges_own_data_sits_on_the_shipped_tick_and_lot(tmp_path: Path, capture: str) -> None:
    """Truth nobody here wrote: every price Binance sent (depth, bookTicker, trades) is a multiple of the
    shipped tick size, every traded and top-of-book size a multiple of the lot size. (A few spot depth levels
    far from the touch hold sizes finer than today's lot: orders resting since an older step size.)"""
    from domain.events import BookDelta, BookSnapshot, TradeTick

    path = DATA / "hftbacktest" / capture
    assert path.is_file(), f"recorded data missing: {path}"
    log = SqliteEventLog(tmp_path / "events.sqlite")
    import_binance_ws(log, "c", [path], code_version=lambda: "test", echo=None)
    stream = log.streams("c")[0]  # md.<venue>.<instrument> sorts before "session"
    events = [decode(r.record.payload) for r in log.read("c", stream)]
    spec = events[0]
    assert isinstance(spec, InstrumentDefined)
    prices, sizes = [], []
    for event in events[1:]:
        if isinstance(event, BookDelta | BookSnapshot):
            prices += [price for price, _ in (*event.bids, *event.asks)]
        elif isinstance(event, QuoteTick):
            prices += [event.bid_price, event.ask_price]
            sizes += [event.bid_size, event.ask_size]
        elif isinstance(event, TradeTick):
            prices.append(event.price)
            sizes.append(event.size)
    assert len(prices) > 50_000 and len(sizes) > 20_000
    assert [p for p in prices if p % spec.tick_size] == []
    assert [s for s in sizes if s % spec.lot_size] == []


LEAN_QUOTES = sorted(p.relative_to(DATA) for p in (DATA / "quantconnect-lean").rglob("*_quote.zip"))


def test_the_shared_lean_quote_files_are_all_there() -> None:
    assert len(LEAN_QUOTES) >= 20, f"recorded Lean data missing under {DATA}"


@pytest.mark.parametrize("relative", LEAN_QUOTES, ids=str)
def test_every_lean_quote_sits_on_the_shipped_tick(tmp_path: Path, relative: Path) -> None:
    """Every recorded bid/ask of every shared Lean quote file (Binance COIN-M and USD-M, Bybit inverse, linear
    and spot, dYdX, Coinbase) is a multiple of the shipped tick size. Sizes too, except Coinbase's, which Lean
    stored through floats (`0.060000000000000005`)."""
    from adapters.importers.lean import import_lean_quotes, parse_path

    info = parse_path(DATA / relative)
    log = SqliteEventLog(tmp_path / "events.sqlite")
    import_lean_quotes(log, "l", [DATA / relative], code_version=lambda: "test", echo=None)
    spec, *quotes = (decode(r.record.payload) for r in log.read("l", f"md.{info.venue}.{info.instrument}"))
    assert isinstance(spec, InstrumentDefined) and quotes
    assert all(isinstance(q, QuoteTick) for q in quotes)
    prices = [p for q in quotes if isinstance(q, QuoteTick) for p in (q.bid_price, q.ask_price)]
    assert [p for p in prices if p % spec.tick_size] == []
    if info.exchange != "coinbase":
        sizes = [s for q in quotes if isinstance(q, QuoteTick) for s in (q.bid_size, q.ask_size)]
        assert [s for s in sizes if s % spec.lot_size] == []
