"""Live trading against the local exchange (loopback only): an order command through the kernel and the live
venue ends in the exchange's answers as recorded order events; a retry after a timeout never places a second
order; a restart reconciles fills once; the breaker opens, refuses through risk, probes and closes; live and
paper sessions replay with zero divergences."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.entrypoints.bootstrap import simulated_venues
from adapters.entrypoints.commands import load_run_config
from adapters.exchanges.breaker import BreakerConfig
from adapters.exchanges.client_ids import client_order_id
from adapters.exchanges.live_venue import LiveVenue, LiveVenueConfig, venue_stream
from adapters.exchanges.trading import SessionMarketFeed, trade
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.live_run import LiveMode, LiveRun, RecordedVenue
from application.operator_commands import COMMANDS_STREAM, append_operator_command
from application.replay import replay_session
from application.run_config import RunConfig
from application.session_run import RunParameters
from domain.events import (
    CancelOrder,
    EngageKillSwitch,
    Envelope,
    EventBase,
    InstrumentDefined,
    KillSwitchEngaged,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    VenueCircuitChanged,
    decode,
    input_event_id,
)
from domain.values import OrderType, Side
from tests.e2e.live_support import client, local_exchange, on_server
from tests.e2e.test_import_cli import SPOT, USDM
from tests.local_exchange import LocalExchange
from tests.local_exchange.kraken_orders import order_txid, trade_txid
from tests.local_exchange.orders import DeskOrder, DeskTrade, OrderDesk
from tests.unit.test_import_safety import head_gz

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "samples" / "spread-demo.toml"
CONFIG = load_run_config(DEMO)
SESSION = "live-test"
MD = "md.binance-spot.BTCUSDT"
T0 = 1_700_000_000_000_000_000
VENUES = [("binance-spot", "binance"), ("bybit-spot", "bybit"), ("kraken-spot", "kraken")]
"""(venue, ccxt exchange id) of the spot venues the local exchange trades."""
INSTRUMENTS = {"kraken-spot": "XBTUSDT"}
"""The venue's own name of BTC/USDT where it is not BTCUSDT (our instrument is the exchange's market id)."""
KRAKEN_FEES = {"maker_bps": "25", "taker_bps": "40"}
"""Kraken's published starter tier for XBTUSDT (AssetPairs `fees_maker` [0, 0.25], `fees` [0, 0.4] percent)."""


DESK_APIS = {"binance": "spot", "bybit": "bybit-spot", "kraken": "kraken-spot"}
"""The desk's name of each spot venue's account (`tests/local_exchange/orders.py`, `kraken_orders.py`)."""


def venue_ids(exchange_id: str, order: DeskOrder, trades: list[DeskTrade]) -> tuple[str, list[str]]:
    """The order and trade ids the exchange reports for a desk order (Kraken's are txid-shaped)."""
    if exchange_id == "kraken":
        return order_txid(order), [trade_txid(t) for t in trades]
    return str(order.order_id), [str(t.trade_id) for t in trades]


def config_for(venue: str) -> RunConfig:
    """The demo configuration with `venue` as the spot leg (Binance's VIP 0 rates restated for Bybit's: 10 bps;
    Kraken's own)."""
    raw = tomllib.loads(DEMO.read_text())
    rates = KRAKEN_FEES if venue == "kraken-spot" else raw["venues"]["binance-spot"]
    raw["venues"] = {venue: rates, "binance-usdm": raw["venues"]["binance-usdm"]}
    raw["strategy"]["taker_fee_bps"] = {venue: "1", "binance-usdm": "1.7"}
    return RunConfig.model_validate(raw)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += 1_000  # strictly increasing, as a local receive clock
        return self.now


@dataclass
class Session:
    name: str
    run: LiveRun
    venue: LiveVenue
    desk: OrderDesk
    clock: Clock
    local: LocalExchange | None
    inbox: list[tuple[str, EventBase]] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)

    def input(self, stream: str, event_cls: type[EventBase], **fields: object) -> EventBase:
        """An input arriving now: market data, or (stream `commands`) a command an operator sends, stored in
        the session as `cse command` stores it, then run by the loop."""
        now = self.clock()
        if stream == COMMANDS_STREAM:
            event = append_operator_command(
                self.run.log, SESSION, now, lambda env: event_cls(envelope=env, **fields)
            )
            self.run.feed(self.run.operator_commands())
            return event
        sequence = self.sequences.get(stream, self.run.log.end_offset(SESSION, stream))
        self.sequences[stream] = sequence + 1
        envelope = Envelope(event_id=input_event_id(SESSION, stream, sequence), session_id=SESSION,
                            sequence=sequence, event_time_ns=now, ingest_time_ns=now, source="test")  # fmt: skip
        event = event_cls(envelope=envelope, **fields)
        self.run.feed([(stream, event)])
        return event

    @property
    def instrument(self) -> str:
        return INSTRUMENTS.get(self.name, "BTCUSDT")

    def quote(self, bid: str = "50000", ask: str = "50001") -> None:
        self.input(f"md.{self.name}.{self.instrument}", QuoteTick, venue=self.name, instrument=self.instrument, bid_price=Decimal(bid),
                   bid_size=Decimal(1), ask_price=Decimal(ask), ask_size=Decimal(1))  # fmt: skip

    def order(self, price: str, quantity: str = "0.01", side: Side = Side.BUY) -> PlaceOrder:
        event = self.input("commands", PlaceOrder, order_id=uuid.uuid4(), account="demo", strategy_id="manual",
                           venue=self.name, instrument=self.instrument, side=side, order_type=OrderType.LIMIT,
                           quantity=Decimal(quantity), limit_price=Decimal(price))  # fmt: skip
        assert isinstance(event, PlaceOrder)
        return event

    def fill(self, client_id: str, quantity: str) -> DeskTrade:
        """A maker fill of a resting order at the exchange (on its thread)."""
        assert self.local is not None
        return on_server(self.local, self.venue.exchange.id, lambda: self.desk.fill(client_id, quantity))

    async def pump(self) -> list[EventBase]:
        """Let the venue's requests finish and feed what it reported, as the trading loop does."""
        await self.venue.settle()
        reported = [event for _, event in self.inbox]
        while self.inbox:
            batch, self.inbox[:] = list(self.inbox), []
            self.run.feed(batch)
            await self.venue.settle()
        return reported


def records(log: SqliteEventLog, stream: str) -> Iterator[EventBase]:
    return (decode(s.record.payload) for s in log.read(SESSION, stream))


@asynccontextmanager
async def live_session(log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, *,
                       venue: tuple[str, str] = VENUES[0], config: LiveVenueConfig | None = None,
                       timeout_ms: int = 1500, streams: bool = False) -> AsyncIterator[Session]:  # fmt: skip
    """A live session on the local exchange trading `venue` (name, ccxt id); a second one over the same log
    resumes (a restart)."""
    name, exchange_id = venue
    clock = Clock()
    exchange = await client(local, exchange_id, timeout_ms=timeout_ms, streams=streams)
    try:
        inbox: list[tuple[str, EventBase]] = []
        live = LiveVenue(name, exchange, SESSION, inbox.append, clock,
                         config=config or LiveVenueConfig(retry_backoff_s=0.01), market_type="spot",
                         first_sequence=log.end_offset(SESSION, venue_stream(name)))  # fmt: skip
        streams_of_run = ("commands", f"md.{name}.{INSTRUMENTS.get(name, 'BTCUSDT')}", venue_stream(name))
        # The USD-M leg is not traded here: a venue that never acts.
        run = LiveRun(log, SESSION, RunParameters(SESSION, streams_of_run, config_for(name)), "live",
                      {name: live, "binance-usdm": RecordedVenue("binance-usdm")}, "test")  # fmt: skip
        session = Session(name, run, live, desk, clock, local, inbox)
        if run.started:
            live.restoring = True
            run.resume()
            live.restoring = False
            clock.now = max(clock.now, run.kernel.clock.now_ns())
        else:
            run.start(clock())
        yield session
    finally:
        await exchange.close()


@pytest.fixture
def desk() -> OrderDesk:
    return OrderDesk()


@pytest.fixture
def local(desk: OrderDesk) -> Iterator[LocalExchange]:
    with local_exchange(desk) as exchange:
        yield exchange


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteEventLog]:
    log = SqliteEventLog(tmp_path / "events.sqlite")
    yield log
    log.close()


def assert_replays(log: SqliteEventLog, mode: LiveMode = "live") -> None:
    report = replay_session(log, SESSION, simulated_venues, "test")
    assert report.mode == mode
    assert report.events_checked > 0
    assert report.divergences == 0 and report.ok, report.first


@pytest.mark.parametrize("venue", VENUES, ids=[v for v, _ in VENUES])
async def test_an_order_command_ends_in_the_exchanges_answers_as_recorded_order_events(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, venue: tuple[str, str]
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001", size="0.004")  # the ask holds 0.004 of the 0.01 wanted
    if venue[1] == "kraken":
        desk.taker_fee = Decimal(KRAKEN_FEES["taker_bps"]) / 10_000
    async with live_session(log, local, desk, venue=venue) as s:
        s.quote()
        order = s.order("50001")
        reported = await s.pump()
        await (
            s.venue.poll()
        )  # Bybit and Kraken answer an order with its ids only: its fills come from polling
        reported += await s.pump()
        (placed,) = desk.by_client_id(client_order_id(venue[1], order.order_id))
        # Binance and Bybit: "cse" + the order id's hex (36 characters); Kraken's cl_ord_id is a UUID
        client_id = str(order.order_id) if venue[1] == "kraken" else "cse" + order.order_id.hex
        assert placed.client_id == client_id and placed.quantity == Decimal("0.01")
        assert [type(e) for e in reported] == [OrderAccepted, OrderPartiallyFilled]
        accepted, fill = reported
        assert isinstance(accepted, OrderAccepted)
        assert accepted.venue_order_id == venue_ids(venue[1], placed, [])[0]
        assert accepted.envelope.causation_id == order.envelope.event_id
        assert isinstance(fill, OrderPartiallyFilled)
        # 0.004 at the ask 50001, taker fee 0.1%: Binance charges the quote, 0.004 x 50001 x 0.001 = 0.200004
        # USDT; Bybit spot charges a buy in the coin received, 0.004 x 0.001 = 0.000004 BTC. Kraken, taker
        # 0.40%, in the quote (TradesHistory's `fee`): 0.004 x 50001 x 0.004 = 0.800016 USDT.
        fee = {"binance": (Decimal("0.200004"), "USDT"), "bybit": (Decimal("0.000004"), "BTC"),
               "kraken": (Decimal("0.800016"), "USDT")}[venue[1]]  # fmt: skip
        assert (fill.price, fill.quantity, (fill.fee, fill.fee_currency)) == (
            Decimal("50001"),
            Decimal("0.004"),
            fee,
        )
        assert (fill.cumulative_quantity, fill.leaves_quantity) == (Decimal("0.004"), Decimal("0.006"))
        if venue[1] == "kraken":  # the order's own trades (QueryTrades), never the account's last page of 50
            assert ("POST", "/0/private/QueryTrades") in desk.requests
            assert ("POST", "/0/private/TradesHistory") not in desk.requests
        s.fill(placed.client_id, "0.006")  # the rest rests at 50001 until a trade reaches it
        await s.venue.poll()
        (last,) = await s.pump()
        assert isinstance(last, OrderFilled) and last.leaves_quantity == 0 and last.price == Decimal("50001")
        assert s.run.kernel.states()["orders"].orders[order.order_id].status == "filled"
        passed = [e for e in records(log, "derived") if isinstance(e, RiskCheckPassed)]
        assert [e.order_id for e in passed] == [order.order_id]
        kinds = [e.type for e in records(log, venue_stream(s.name))]
        assert kinds == ["order.accepted", "order.partially_filled", "order.filled"]
        s.run.end(s.clock())
    assert_replays(log)


RETRY_LOOKUPS = [
    (VENUES[0], "/api/v3/order", [("POST", "/api/v3/order"), ("GET", "/api/v3/order")]),
    # Kraken finds an order by client id in its open orders (QueryOrders takes the exchange's ids only)
    (VENUES[2], "/0/private/AddOrder", [("POST", "/0/private/AddOrder"), ("POST", "/0/private/OpenOrders")]),
]
"""(venue, the placement path, the requests of a placement whose answer was lost and its retry)."""


@pytest.mark.parametrize(
    ("venue", "path", "requests"), RETRY_LOOKUPS, ids=[v for (v, _), _, _ in RETRY_LOOKUPS]
)
async def test_a_retry_after_a_timeout_looks_the_order_up_and_never_places_it_twice(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, venue: tuple[str, str], path: str,
    requests: list[tuple[str, str]],
) -> None:  # fmt: skip
    desk.set_book("BTCUSDT", "50000", "50001")
    desk.fault(path, "accept_then_timeout")  # the exchange takes the order, the answer never comes
    desk.hang_s = 1.0  # past the client's 0.4 s timeout; short, so the server shuts down quickly
    async with live_session(log, local, desk, venue=venue, timeout_ms=400) as s:
        s.quote()
        order = s.order("49990")  # rests below the ask
        reported = await s.pump()
        client_id = client_order_id(venue[1], order.order_id)
        assert len(desk.by_client_id(client_id)) == 1
        assert [r for r in desk.requests if r[1] in {p for _, p in requests}] == requests
        # the retry looked it up, found it, stopped
        assert [type(e) for e in reported] == [OrderAccepted]
        assert s.venue.counters()["found_by_client_id"] == 1
        s.run.end(s.clock())
    assert_replays(log)


@pytest.mark.parametrize("venue", VENUES, ids=[v for v, _ in VENUES])
async def test_a_restart_reconciles_fills_made_while_down_once(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, venue: tuple[str, str]
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    async with live_session(log, local, desk, venue=venue) as s:
        s.quote()
        order = s.order("49990", quantity="0.01")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        client_id = client_order_id(venue[1], order.order_id)
        s.fill(client_id, "0.003")
        await s.venue.poll()
        assert [type(e) for e in await s.pump()] == [OrderPartiallyFilled]
    # The process is gone (no SessionEnded). While it is down the order fills twice more, and then the account
    # trades 60 times more by hand (its history pages: Kraken's TradesHistory shows the latest 50).
    on_server(local, venue[1], lambda: desk.fill(client_id, "0.002"))
    on_server(local, venue[1], lambda: desk.fill(client_id, "0.005"))
    for i in range(60):
        on_server(local, venue[1], lambda i=i: desk.place(DESK_APIS[venue[1]], "BTCUSDT", "BUY", "LIMIT", "GTC",
                                                          Decimal("0.0001"), Decimal("50001"), f"manual-{i}"))  # fmt: skip
    async with live_session(log, local, desk, venue=venue) as s:
        await s.venue.reconcile()
        missed = await s.pump()
        assert [
            (type(e), e.quantity) for e in missed if isinstance(e, OrderPartiallyFilled | OrderFilled)
        ] == [(OrderPartiallyFilled, Decimal("0.002")), (OrderFilled, Decimal("0.005"))]
        await s.venue.reconcile()  # again: nothing new
        assert await s.pump() == []
        fills = [
            e
            for e in records(log, venue_stream(venue[0]))
            if isinstance(e, OrderPartiallyFilled | OrderFilled)
        ]
        (placed,) = desk.by_client_id(client_id)
        ours = [t for t in desk.trades if t.order is placed]
        assert sorted(f.venue_trade_id for f in fills) == sorted(venue_ids(venue[1], placed, ours)[1])
        assert sum(f.quantity for f in fills) == Decimal("0.01")
        assert s.run.kernel.states()["orders"].orders[order.order_id].status == "filled"
        s.run.end(s.clock())
    assert_replays(log)


@pytest.mark.parametrize("status", [503, 429])
async def test_the_breaker_opens_refuses_through_risk_probes_half_open_and_closes(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, status: int
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    local.venue("binance").faults.http_status("/api/v3/order", status, times=3)
    breaker = BreakerConfig(failure_threshold=3, open_for_ns=5_000_000_000)
    async with live_session(
        log, local, desk, config=LiveVenueConfig(retries=5, retry_backoff_s=0.01, breaker=breaker)
    ) as s:
        s.quote()
        first = s.order("49990")
        reported = await s.pump()
        assert [(e.state, e.failures) for e in reported if isinstance(e, VenueCircuitChanged)] == [
            ("open", 3)
        ]
        assert desk.orders == []  # three failures (the order, two lookups), then nothing is sent while open
        second = s.order("49991")
        (rejected,) = [e for e in records(log, "derived")
                       if isinstance(e, RiskCheckRejected) and e.order_id == second.order_id]  # fmt: skip
        assert (rejected.rule, rejected.actual) == ("venue_breaker", 3)
        assert "circuit breaker of binance-spot is open" in rejected.detail
        await s.venue.poll()  # not yet: still open
        assert await s.pump() == []
        s.clock.now += 10_000_000_000  # open for 5 s; the first order's request void after 10 s (recvWindow)
        await s.venue.poll()  # half-open, the probe (GET /api/v3/time) answers: closed; then the first order,
        reported = await s.pump()  # never placed, is found nowhere by its client id: rejected
        assert [e.state for e in reported if isinstance(e, VenueCircuitChanged)] == ["half_open", "closed"]
        (never,) = [e for e in reported if isinstance(e, OrderRejected)]
        assert never.order_id == first.order_id and "never placed" in never.reason
        third = s.order("49992")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        assert len(desk.by_client_id(client_order_id("binance", third.order_id))) == 1
        s.run.end(s.clock())
    assert_replays(log)


def test_a_paper_session_replays_with_zero_divergences(log: SqliteEventLog) -> None:
    clock = Clock()
    run = LiveRun(log, SESSION, RunParameters(SESSION, ("commands", MD), CONFIG), "paper",
                  simulated_venues(CONFIG), "test")  # fmt: skip
    run.start(clock())
    s = Session("binance-spot", run, None, OrderDesk(), clock, None)  # type: ignore[arg-type]
    s.input(MD, InstrumentDefined, venue="binance-spot", instrument="BTCUSDT", base="BTC", quote="USDT",
            settlement="USDT", kind="spot", contract_size=Decimal(1), tick_size=Decimal("0.01"),
            lot_size=Decimal("0.00001"), min_notional=Decimal(5), maker_fee_bps=Decimal(10),
            taker_fee_bps=Decimal(10))  # fmt: skip
    s.quote()
    order = s.order("50001")
    clock.now += 20_000_000  # past the simulated order and response latencies (5 ms each)
    s.quote("50000.5", "50001.5")
    s.quote("50001", "50002")
    run.end(clock())
    assert run.kernel.states()["orders"].orders[order.order_id].status == "filled"
    assert_replays(log, "paper")


async def test_the_trading_loop_over_a_recorded_feed_places_each_passed_order_once_and_replays(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, tmp_path: Path
) -> None:
    """The whole live path: recorded Binance captures as the feed, the strategy deciding, risk passing,
    both legs (spot and USD-M) on the local exchange, polling, and the session replaying exactly."""
    spot = head_gz(SPOT, tmp_path / "spot" / SPOT.name, 6_000)
    usdm = head_gz(USDM, tmp_path / "usdm" / USDM.name, 6_000)
    import_binance_ws(log, "feed", [spot, usdm], code_version=lambda: "test", echo=None)
    desk.fill_at_limit = True
    clock = Clock()
    inbox: asyncio.Queue[tuple[str, EventBase]] = asyncio.Queue()
    spot_ex, usdm_ex = await client(local, "binance"), await client(local, "binanceusdm")
    try:
        venues = [LiveVenue(name, exchange, SESSION, inbox.put_nowait, clock, market_type=kind,
                            config=LiveVenueConfig(retry_backoff_s=0.01))
                  for name, exchange, kind in (("binance-spot", spot_ex, "spot"), ("binance-usdm", usdm_ex, "swap"))]  # fmt: skip
        feed = SessionMarketFeed(log, "feed", SESSION, clock, speed=0)
        config = CONFIG
        streams = feed.streams + tuple(venue_stream(v.name) for v in venues)
        run = LiveRun(
            log, SESSION, RunParameters(SESSION, streams, config), "live", {v.name: v for v in venues}, "t"
        )
        run.start(clock())
        fed = await trade(run, feed.__aiter__(), inbox, venues, 0.05)
        for venue in venues:  # the last orders' fills
            await venue.poll()
            await venue.settle()
        tail = []
        while not inbox.empty():
            tail.append(inbox.get_nowait())
        run.feed(tail)
        run.end(clock())
    finally:
        await spot_ex.close()
        await usdm_ex.close()
    assert fed >= 12_000
    passed = [e for e in records(log, "derived") if isinstance(e, RiskCheckPassed)]
    assert passed, "the strategy traded nothing: the test proves nothing"
    placed = sorted(o.client_id for o in desk.orders)
    assert placed == sorted(client_order_id("binance", e.order_id) for e in passed)  # each once, none twice
    orders = run.kernel.states()["orders"].orders
    assert [orders[e.order_id].status for e in passed] == ["filled"] * len(passed)
    fills = [e for v in venues for e in records(log, venue_stream(v.name)) if isinstance(e, OrderFilled)]
    assert sorted(f.venue_trade_id for f in fills) == sorted(str(t.trade_id) for t in desk.trades)
    assert_replays(log)


async def test_bybit_pushes_order_updates_on_its_private_websocket_and_polling_covers_a_dropped_stream(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    async with live_session(log, local, desk, venue=VENUES[1], streams=True) as s:
        assert s.venue.streams_orders
        watcher = asyncio.ensure_future(s.venue.watch())
        try:
            s.quote()
            order = s.order("49990")
            assert [type(e) for e in await s.pump()] == [OrderAccepted]
            client_id = client_order_id("bybit", order.order_id)
            await _until(lambda: ("WS", "subscribe order") in desk.requests)
            polled = desk.requests.count(("GET", "/v5/order/realtime"))
            s.fill(client_id, "0.004")  # pushed: {"topic": "order", ...} with cumExecQty 0.004
            await _until(lambda: s.inbox)
            (fill,) = await s.pump()
            assert isinstance(fill, OrderPartiallyFilled) and fill.quantity == Decimal("0.004")
            assert desk.requests.count(("GET", "/v5/order/realtime")) == polled  # no polling needed
            on_server(
                local, "bybit", desk.drop_streams
            )  # the connection drops; a fill happens before it is back
            s.fill(client_id, "0.006")
            await s.venue.poll()
            (last,) = await s.pump()
            assert isinstance(last, OrderFilled) and last.quantity == Decimal("0.006")
        finally:
            watcher.cancel()
        s.run.end(s.clock())
    assert_replays(log)


async def _until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting")


async def test_an_order_the_exchange_refuses_is_rejected_with_its_reason_and_the_breaker_stays_closed(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    desk.fault("/api/v3/order", "reject")
    async with live_session(log, local, desk) as s:
        s.quote()
        order = s.order("49990")
        (rejected,) = await s.pump()
        assert isinstance(rejected, OrderRejected) and rejected.order_id == order.order_id
        # ccxt's class for Binance's message, then the message: a trader sees what the exchange said
        assert rejected.reason == "OrderImmediatelyFillable: binance Order would immediately match and take."
        assert desk.orders == [] and s.venue.breaker.state == "closed"
        again = s.order("49990")  # the next order goes out
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        assert len(desk.by_client_id(client_order_id("binance", again.order_id))) == 1
        s.run.end(s.clock())
    assert_replays(log)


@pytest.mark.parametrize("venue", VENUES, ids=[v for v, _ in VENUES])
async def test_a_cancel_command_cancels_at_the_exchange_and_the_account_endpoints_answer_ccxt(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk, venue: tuple[str, str]
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    async with live_session(log, local, desk, venue=venue) as s:
        s.quote()
        order = s.order("49990")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        open_orders = await s.venue.exchange.fetch_open_orders("BTC/USDT")
        assert [o["clientOrderId"] for o in open_orders] == [client_order_id(venue[1], order.order_id)]
        balance = await s.venue.exchange.fetch_balance()
        assert Decimal(str(balance["USDT"]["total"])) == Decimal(100_000)
        s.input("commands", CancelOrder, order_id=order.order_id, venue=s.name, reason="operator: flat")
        (canceled,) = await s.pump()
        assert isinstance(canceled, OrderCanceled) and canceled.reason == "operator: flat"
        (at_exchange,) = desk.by_client_id(client_order_id(venue[1], order.order_id))
        assert at_exchange.status == "CANCELED"
        assert s.run.kernel.states()["orders"].orders[order.order_id].status == "canceled"
        s.run.end(s.clock())
    assert_replays(log)


async def test_an_operators_kill_switch_reaches_the_running_session_cancels_at_the_exchange_and_survives_a_restart(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    async with live_session(log, local, desk) as s:
        s.quote()
        order = s.order("49990")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        # `cse command kill-switch engage --session live-test` stores it; the loop runs it before its next batch
        s.input(COMMANDS_STREAM, EngageKillSwitch, reason="desk halt", operator="ops")
        derived = list(records(log, "derived"))
        assert [type(e) for e in derived[-2:]] == [KillSwitchEngaged, CancelOrder]
        (canceled,) = await s.pump()
        assert isinstance(canceled, OrderCanceled) and canceled.order_id == order.order_id
        assert desk.by_client_id(client_order_id("binance", order.order_id))[0].status == "CANCELED"
        refused = s.order("49990")
        (verdict,) = [e for e in records(log, "derived") if isinstance(e, RiskCheckRejected)]
        assert (verdict.order_id, verdict.rule) == (refused.order_id, "kill_switch")
    # Down; meanwhile the operator releases the switch (stored, not yet run: it is after the recorded order).
    append_operator_command(log, SESSION, T0 + 10**12, lambda env: ReleaseKillSwitch(
        envelope=env, reason="resume", operator="ops"))  # fmt: skip
    async with live_session(log, local, desk) as s:
        pending = s.run.operator_commands()
        assert [type(e) for _, e in pending] == [ReleaseKillSwitch]
        s.run.feed(pending)
        s.clock.now = T0 + 10**12
        s.quote()
        again = s.order("49990")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        assert len(desk.by_client_id(client_order_id("binance", again.order_id))) == 1
        s.run.end(s.clock())
    assert_replays(log)


async def test_an_order_for_an_instrument_the_exchange_does_not_list_is_rejected_without_a_request(
    local: LocalExchange, desk: OrderDesk
) -> None:
    exchange = await client(local, "binance")
    try:
        reports: list[tuple[str, EventBase]] = []
        venue = LiveVenue("binance-spot", exchange, SESSION, reports.append, Clock())
        envelope = Envelope(event_id=uuid.uuid4(), session_id=SESSION, sequence=0, event_time_ns=T0,
                            ingest_time_ns=T0, source="test")  # fmt: skip
        order = PlaceOrder(envelope=envelope, order_id=uuid.uuid4(), account="demo", strategy_id="manual",
                           venue="binance-spot", instrument="DOGEUSDT", side=Side.BUY, order_type=OrderType.LIMIT,
                           quantity=Decimal(100), limit_price=Decimal("0.1"))  # fmt: skip
        assert venue.submit(order) == []
        await venue.settle()
        ((stream, rejected),) = reports
        assert stream == "orders.binance-spot" and isinstance(rejected, OrderRejected)
        assert rejected.reason == "binance-spot: binance lists no market 'DOGEUSDT'"
        assert desk.requests == []
    finally:
        await exchange.close()


async def test_a_restart_keeps_an_open_breaker_open_until_a_probe_answers(
    log: SqliteEventLog, local: LocalExchange, desk: OrderDesk
) -> None:
    desk.set_book("BTCUSDT", "50000", "50001")
    local.venue("binance").faults.http_status("/api/v3/order", 503, times=3)
    config = LiveVenueConfig(retries=5, retry_backoff_s=0.01, breaker=BreakerConfig(3, 5_000_000_000))
    async with live_session(log, local, desk, config=config) as s:
        s.quote()
        s.order("49990")
        assert [e.state for e in await s.pump() if isinstance(e, VenueCircuitChanged)] == ["open"]
    async with live_session(log, local, desk, config=config) as s:  # restarted: the recorded state holds
        assert s.venue.breaker.state == "open"
        refused = s.order("49991")
        (verdict,) = [e for e in records(log, "derived")
                      if isinstance(e, RiskCheckRejected) and e.order_id == refused.order_id]  # fmt: skip
        assert verdict.rule == "venue_breaker"
        s.clock.now += 10_000_000_000
        await s.venue.reconcile()  # the probe answers: closed; the first order, never placed, is rejected
        reported = await s.pump()
        assert [e.state for e in reported if isinstance(e, VenueCircuitChanged)] == ["half_open", "closed"]
        assert [type(e) for e in reported if not isinstance(e, VenueCircuitChanged)] == [OrderRejected]
        s.run.end(s.clock())
    assert_replays(log)
