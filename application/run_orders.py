"""What one run did with its orders, read back from the event log: every order it placed, what the venue
answered and when, its fills (folded by the order lifecycle's own rules, so a duplicate fill delivery counts
once), the price it decided on, and the marks its market data ends with.

A run is any session that placed orders: a backtest (orders and venue answers in its `derived` stream), or a
live or paper session (venue answers recorded as inputs). Streams are read whole, whatever their names, except
market data (`md.*`), which is read only for instrument specifications and marks.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from application.backtest import session_instruments
from application.ports import EventLog
from application.run_config import InstrumentSpecs
from application.session_run import MARKET_DATA_PREFIX, SESSION_STREAM, market_data_streams
from domain.events import (
    EventBase,
    OrderEvent,
    OrderFillEvent,
    OrderTransitionRefused,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    SessionStarted,
    SpreadOpportunityDetected,
    decode,
)
from domain.market_view import ReferenceMarketView
from domain.orders import Order, OrdersDecider, OrdersState
from domain.values import decimal_context

QUOTE_TYPE: str = QuoteTick.model_fields["type"].default
MARK_SCAN = 2_000
"""Records read at a time, backwards from a market-data stream's end, looking for its last quote."""


class RunUnavailable(ValueError):
    """A session that cannot be compared: missing, or without orders. The message names it."""


@dataclass(frozen=True)
class Latency:
    """What the run's simulated venue assumed (None for a live venue, or when the run does not say)."""

    order_ns: int | None
    response_ns: int | None


@dataclass
class PlacedOrder:
    command: PlaceOrder
    reference_price: Decimal | None
    """The price the strategy decided on: its signal's price for this leg, else the order's limit price."""
    fills: list[OrderFillEvent] = field(default_factory=list)
    first_response_ns: int | None = None
    """Engine time of the venue's first answer (accepted, rejected or a fill)."""
    first_venue_ns: int | None = None
    """The venue's own time of that answer, where the venue stamps it."""
    state: Order | None = None
    risk_rejection: str | None = None
    """The risk rule that refused it (it never reached the venue), None if risk passed it."""

    @property
    def placed_ns(self) -> int:
        return self.command.envelope.event_time_ns


@dataclass
class RunOrders:
    session: str
    mode: str
    """The SessionStarted mode (backtest, live, paper, ...), "unknown" without one."""
    input_session: str | None
    """The session whose market data the run ran over (a backtest's parameters), None when not recorded."""
    assumed: Latency
    orders: list[PlacedOrder]
    specs: InstrumentSpecs
    marks: dict[tuple[str, str], Decimal]
    """(venue, instrument) -> the last mid of the run's market data."""
    orphan_fills: int = 0
    """Fills the lifecycle refused (no PlaceOrder in the session, overfill, ...): not counted."""


def read_run(log: EventLog, session: str) -> RunOrders:
    if session not in log.sessions():
        raise RunUnavailable(f"no session {session!r} in the event log (`cse sessions` lists them)")
    streams = log.streams(session)
    md = market_data_streams(log, session)
    mode, input_session, assumed = _session_started(log, session)
    events = [e for s in streams if not s.startswith(MARKET_DATA_PREFIX) and s != SESSION_STREAM
              for e in _decoded(log, session, s)]  # fmt: skip
    signals = {e.opportunity_id: e for e in events if isinstance(e, SpreadOpportunityDetected)}
    placed = {e.order_id: PlacedOrder(e, _reference(e, signals)) for e in events if isinstance(e, PlaceOrder)}
    if not placed:
        kinds = ", ".join(streams) or "no streams"
        raise RunUnavailable(f"session {session!r} has no orders (no command.place_order in {kinds})")
    for event in events:
        if isinstance(event, RiskCheckRejected) and event.order_id in placed:
            placed[event.order_id].risk_rejection = event.rule
    orders, orphans = _fold(placed, [e for e in events if isinstance(e, OrderEvent)])
    return RunOrders(session, mode, input_session, assumed, orders, session_instruments(log, session, md),
                     _marks(log, session, md), orphans)  # fmt: skip


def _decoded(log: EventLog, session: str, stream: str, start: int = 0) -> Iterator[EventBase]:
    for stored in log.read(session, stream, start):
        yield decode(stored.record.payload)


def _session_started(log: EventLog, session: str) -> tuple[str, str | None, Latency]:
    started = next((e for e in _decoded(log, session, SESSION_STREAM) if isinstance(e, SessionStarted)), None)
    if started is None:
        return "unknown", None, Latency(None, None)
    parameters = json.loads(started.parameters or "{}")
    config = parameters.get("config", {}) if isinstance(parameters, dict) else {}
    input_session = parameters.get("input_session") if isinstance(parameters, dict) else None
    if started.mode == "live":  # the exchange answers: nothing is assumed
        return started.mode, input_session, Latency(None, None)
    return (
        started.mode,
        input_session,
        Latency(config.get("order_latency_ns"), config.get("response_latency_ns")),
    )


def _reference(order: PlaceOrder, signals: dict[uuid.UUID, SpreadOpportunityDetected]) -> Decimal | None:
    signal = signals.get(order.leg_group_id) if order.leg_group_id is not None else None
    if signal is not None and not order.repair:
        if order.venue == signal.buy_venue and order.side.sign > 0:
            return signal.buy_price
        if order.venue == signal.sell_venue and order.side.sign < 0:
            return signal.sell_price
    return order.limit_price


def _fold(placed: dict[uuid.UUID, PlacedOrder], answers: list[OrderEvent]) -> tuple[list[PlacedOrder], int]:
    """Each order's answers through the order lifecycle (`domain/orders.py`), in engine time: what it refuses
    or ignores (duplicates) is not counted. Returns the orders in placement order and the fills refused."""
    decider = OrdersDecider()
    state: OrdersState = decider.initial_state()
    no_market = ReferenceMarketView()  # the order lifecycle reads no market state
    ordered = sorted(
        placed.values(), key=lambda o: (o.placed_ns, o.command.envelope.sequence, str(o.command.order_id))
    )
    with decimal_context():
        for each in ordered:
            state = decider.evolve(state, each.command, no_market)
        orphans = 0
        answers = [a for a in answers if not isinstance(a, OrderTransitionRefused)]
        for answer in sorted(answers, key=lambda a: (a.envelope.event_time_ns, a.envelope.sequence)):
            owner = placed.get(answer.order_id)
            if owner is None or decider.decide(
                state, answer, no_market
            ):  # no such order, or the lifecycle refuses it
                orphans += isinstance(answer, OrderFillEvent)
                continue
            known = state.orders[answer.order_id]
            fills_before = known.fill_count
            state = decider.evolve(state, answer, no_market)  # a duplicate fill delivery changes nothing
            if owner.first_response_ns is None:
                owner.first_response_ns = answer.envelope.event_time_ns
                owner.first_venue_ns = answer.exchange_time_ns
            if isinstance(answer, OrderFillEvent) and known.fill_count > fills_before:
                owner.fills.append(answer)
    for each in ordered:
        each.state = state.orders.get(each.command.order_id)
    return ordered, orphans


def _marks(log: EventLog, session: str, streams: tuple[str, ...]) -> dict[tuple[str, str], Decimal]:
    """The last quote's mid per (venue, instrument), read from each stream's end backwards in chunks."""
    marks: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for stream in streams:
        end = log.end_offset(session, stream)
        while end > 0:
            start = max(0, end - MARK_SCAN)
            quotes = []
            for stored in log.read(session, stream, start):
                if stored.offset >= end:
                    break
                if stored.record.event_type == QUOTE_TYPE:
                    quotes.append(stored.record.payload)
            if quotes:
                last = decode(quotes[-1])
                assert isinstance(last, QuoteTick)
                key, time_ns = (last.venue, last.instrument), last.envelope.event_time_ns
                if key not in marks or marks[key][0] < time_ns:
                    with decimal_context():
                        marks[key] = (time_ns, (last.bid_price + last.ask_price) / 2)
                break
            end = start
    return {key: mid for key, (_, mid) in marks.items()}
