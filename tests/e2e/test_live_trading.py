"""Live trading against the local exchange (loopback only): an order command through the kernel and the live
venue ends in the exchange's answers as recorded order events; a retry after a timeout never places a second
order; a restart reconciles fills once; the breaker opens, refuses through risk, probes and closes; live and
paper sessions replay with zero divergences."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
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
from adapters.sqlite_event_log import SqliteEventLog
from application.live_run import LiveMode, LiveRun, RecordedVenue
from application.replay import replay_session
from application.session_run import RunParameters
from domain.events import (
    Envelope,
    EventBase,
    InstrumentDefined,
    OrderAccepted,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    RiskCheckPassed,
    RiskCheckRejected,
    VenueCircuitChanged,
    decode,
    input_event_id,
)
from domain.values import OrderType, Side
from tests.e2e.live_support import local_binance
from tests.local_exchange.orders import OrderDesk

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_run_config(ROOT / "deploy" / "samples" / "spread-demo.toml")
SESSION = "live-test"
MD = "md.binance-spot.BTCUSDT"
ORDERS = venue_stream("binance-spot")
STREAMS = ("commands", MD, ORDERS, venue_stream("binance-usdm"))
T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += 1_000  # strictly increasing, as a local receive clock
        return self.now


@dataclass
class Session:
    run: LiveRun
    venue: LiveVenue
    desk: OrderDesk
    clock: Clock
    inbox: list[tuple[str, EventBase]] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)

    def input(self, stream: str, event_cls: type[EventBase], **fields: object) -> EventBase:
        sequence = self.sequences.get(stream, self.run.log.end_offset(SESSION, stream))
        self.sequences[stream] = sequence + 1
        now = self.clock()
        envelope = Envelope(event_id=input_event_id(SESSION, stream, sequence), session_id=SESSION,
                            sequence=sequence, event_time_ns=now, ingest_time_ns=now, source="test")  # fmt: skip
        event = event_cls(envelope=envelope, **fields)
        self.run.feed([(stream, event)])
        return event

    def quote(self, bid: str = "50000", ask: str = "50001") -> None:
        self.input(MD, QuoteTick, venue="binance-spot", instrument="BTCUSDT", bid_price=Decimal(bid),
                   bid_size=Decimal(1), ask_price=Decimal(ask), ask_size=Decimal(1))  # fmt: skip

    def order(self, price: str, quantity: str = "0.01", side: Side = Side.BUY) -> PlaceOrder:
        event = self.input("commands", PlaceOrder, order_id=uuid.uuid4(), account="demo", strategy_id="manual",
                           venue="binance-spot", instrument="BTCUSDT", side=side, order_type=OrderType.LIMIT,
                           quantity=Decimal(quantity), limit_price=Decimal(price))  # fmt: skip
        assert isinstance(event, PlaceOrder)
        return event

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
async def live_session(log: SqliteEventLog, desk: OrderDesk, *, config: LiveVenueConfig | None = None,
                       timeout_ms: int = 1500) -> AsyncIterator[Session]:  # fmt: skip
    """A live session on the local exchange; a second one over the same log resumes (a restart)."""
    clock = Clock()
    async with local_binance(desk, timeout_ms=timeout_ms) as exchange:
        inbox: list[tuple[str, EventBase]] = []
        venue = LiveVenue("binance-spot", exchange, SESSION, lambda s, e: inbox.append((s, e)), clock,
                          config=config or LiveVenueConfig(retry_backoff_s=0.01), market_type="spot",
                          first_sequence=log.end_offset(SESSION, ORDERS))  # fmt: skip
        run = LiveRun(log, SESSION, RunParameters(SESSION, STREAMS, CONFIG), "live",
                      {"binance-spot": venue, "binance-usdm": RecordedVenue("binance-usdm")}, "test")  # fmt: skip
        # (the USD-M leg is not traded here)
        session = Session(run, venue, desk, clock, inbox)
        if run.started:
            venue.restoring = True
            run.resume()
            venue.restoring = False
            clock.now = max(clock.now, run.kernel.clock.now_ns())
        else:
            run.start(clock())
        yield session


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


async def test_an_order_command_ends_in_the_exchanges_answers_as_recorded_order_events(
    log: SqliteEventLog,
) -> None:
    desk = OrderDesk()
    desk.set_book("BTCUSDT", "50000", "50001", size="0.004")  # the ask holds 0.004 of the 0.01 wanted
    async with live_session(log, desk) as s:
        s.quote()
        order = s.order("50001")
        reported = await s.pump()
        (placed,) = desk.by_client_id(client_order_id("binance", order.order_id))
        assert placed.client_id == "cse" + order.order_id.hex and placed.quantity == Decimal("0.01")
        assert [type(e) for e in reported] == [OrderAccepted, OrderPartiallyFilled]
        accepted, fill = reported
        assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id == str(placed.order_id)
        assert accepted.envelope.causation_id == order.envelope.event_id
        assert isinstance(fill, OrderPartiallyFilled)
        # 0.004 at the ask 50001, taker fee 0.1%: 0.004 x 50001 x 0.001 = 0.200004 USDT
        assert (fill.price, fill.quantity, fill.fee, fill.fee_currency) == (
            Decimal("50001"),
            Decimal("0.004"),
            Decimal("0.200004"),
            "USDT",
        )
        assert (fill.cumulative_quantity, fill.leaves_quantity) == (Decimal("0.004"), Decimal("0.006"))
        s.desk.fill(placed.client_id, "0.006")  # the rest rests at 50001 until a trade reaches it
        await s.venue.poll()
        (last,) = await s.pump()
        assert isinstance(last, OrderFilled) and last.leaves_quantity == 0 and last.price == Decimal("50001")
        assert s.run.kernel.states()["orders"].orders[order.order_id].status == "filled"
        passed = [e for e in records(log, "derived") if isinstance(e, RiskCheckPassed)]
        assert [e.order_id for e in passed] == [order.order_id]
        assert [e.type for e in records(log, ORDERS)] == [
            "order.accepted",
            "order.partially_filled",
            "order.filled",
        ]
        s.run.end(s.clock())
    assert_replays(log)


async def test_a_retry_after_a_timeout_looks_the_order_up_and_never_places_it_twice(
    log: SqliteEventLog,
) -> None:
    desk = OrderDesk()
    desk.set_book("BTCUSDT", "50000", "50001")
    desk.fault("/api/v3/order", "accept_then_timeout")  # the exchange takes the order, the answer never comes
    desk.hang_s = 1.0  # past the client's 0.4 s timeout; short, so the server shuts down quickly
    async with live_session(log, desk, timeout_ms=400) as s:
        s.quote()
        order = s.order("49990")  # rests below the ask
        reported = await s.pump()
        client_id = client_order_id("binance", order.order_id)
        assert len(desk.by_client_id(client_id)) == 1
        assert [r for r in desk.requests if r[1] == "/api/v3/order"] == [
            ("POST", "/api/v3/order"),
            ("GET", "/api/v3/order"),
        ]  # the retry looked it up, found it, stopped
        assert [type(e) for e in reported] == [OrderAccepted]
        assert s.venue.counters()["found_by_client_id"] == 1
        s.run.end(s.clock())
    assert_replays(log)


async def test_a_restart_reconciles_fills_made_while_down_once(log: SqliteEventLog) -> None:
    desk = OrderDesk()
    desk.set_book("BTCUSDT", "50000", "50001")
    async with live_session(log, desk) as s:
        s.quote()
        order = s.order("49990", quantity="0.01")
        assert [type(e) for e in await s.pump()] == [OrderAccepted]
        client_id = client_order_id("binance", order.order_id)
        desk.fill(client_id, "0.003")
        await s.venue.poll()
        assert [type(e) for e in await s.pump()] == [OrderPartiallyFilled]
    # The process is gone (no SessionEnded). While it is down the order fills twice more.
    desk.fill(client_id, "0.002")
    desk.fill(client_id, "0.005")
    async with live_session(log, desk) as s:
        await s.venue.reconcile()
        missed = await s.pump()
        assert [
            (type(e), e.quantity) for e in missed if isinstance(e, OrderPartiallyFilled | OrderFilled)
        ] == [(OrderPartiallyFilled, Decimal("0.002")), (OrderFilled, Decimal("0.005"))]
        await s.venue.reconcile()  # again: nothing new
        assert await s.pump() == []
        fills = [e for e in records(log, ORDERS) if isinstance(e, OrderPartiallyFilled | OrderFilled)]
        assert sorted(f.venue_trade_id for f in fills) == sorted(str(t.trade_id) for t in desk.trades)
        assert sum(f.quantity for f in fills) == Decimal("0.01")
        assert s.run.kernel.states()["orders"].orders[order.order_id].status == "filled"
        s.run.end(s.clock())
    assert_replays(log)


async def test_the_breaker_opens_refuses_through_risk_probes_half_open_and_closes(
    log: SqliteEventLog,
) -> None:
    desk = OrderDesk()
    desk.set_book("BTCUSDT", "50000", "50001")
    desk.fault("/api/v3/order", "503", times=3)
    breaker = BreakerConfig(failure_threshold=3, open_for_ns=5_000_000_000)
    async with live_session(
        log, desk, config=LiveVenueConfig(retries=5, retry_backoff_s=0.01, breaker=breaker)
    ) as s:
        s.quote()
        first = s.order("49990")
        reported = await s.pump()
        assert [(e.state, e.failures) for e in reported if isinstance(e, VenueCircuitChanged)] == [
            ("open", 3)
        ]
        assert desk.orders == []  # three 503s, then nothing more is sent while open
        second = s.order("49991")
        (rejected,) = [e for e in records(log, "derived")
                       if isinstance(e, RiskCheckRejected) and e.order_id == second.order_id]  # fmt: skip
        assert (rejected.rule, rejected.actual) == ("venue_breaker", 3)
        assert "circuit breaker of binance-spot is open" in rejected.detail
        await s.venue.poll()  # not yet: still open
        assert await s.pump() == []
        s.clock.now += 5_000_000_000
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
    s = Session(run, None, OrderDesk(), clock)  # type: ignore[arg-type]
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
