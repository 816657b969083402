"""Wake specs: the reference evaluator on hand-computed thresholds, and streams placed exactly on the edges
(edge == hurdle, age == max age, time == cooldown end, == equity sample boundary, == a venue's due time) on which
the gated run (`application.fast_run`) must derive what the reference run derives, with no owner acting where
its spec is false."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.entrypoints.bootstrap import simulated_venues
from application.engine import Kernel
from application.run_config import RunConfig, build_deciders
from domain.events import (
    BookDelta,
    BookSnapshot,
    EngageKillSwitch,
    Envelope,
    EventBase,
    InstrumentDefined,
    QuoteTick,
    ReleaseKillSwitch,
    StartStrategy,
    StopStrategy,
    TradeTick,
    input_event_id,
)
from domain.market_view import ReferenceMarketView
from domain.values import Side
from domain.wake import (
    NEVER,
    Always,
    BookNotClean,
    CrossEdge,
    Hurdle,
    LevelTouched,
    Ratio,
    RowKind,
    WakeSpec,
    evaluate,
    ratio,
)
from tests.wake_audit import audit_run, full_run, gated_run

pytestmark = pytest.mark.unit

X = "BTCUSDT"
_seq = [0]


def env(t: int) -> Envelope:
    _seq[0] += 1
    n = _seq[0]
    return Envelope(event_id=input_event_id("wake", "in", n), session_id="wake", sequence=n, event_time_ns=t,
                    ingest_time_ns=t, source="test")  # fmt: skip


def quote(venue: str, bid: str, ask: str, t: int, bid_size: str = "1", ask_size: str = "1") -> QuoteTick:
    return QuoteTick(envelope=env(t), venue=venue, instrument=X, bid_price=D(bid), bid_size=D(bid_size),
                     ask_price=D(ask), ask_size=D(ask_size))  # fmt: skip


def cross(hurdle: str, max_age: int = 100, min_size: str = "0.5") -> WakeSpec:
    h = ratio(D(hurdle))
    return WakeSpec((CrossEdge(X, (Hurdle("A", "B", h), Hurdle("B", "A", h)), max_age, ratio(D(min_size))),))


# ---- the evaluator, by hand -------------------------------------------------------------------------------


def test_cross_edge_is_strictly_above_the_hurdle_computed_exactly() -> None:
    view = ReferenceMarketView()
    view.apply(quote("A", "9999", "10000", 0))
    # Selling on B at 10004 against buying on A at 10000: (10004 - 10000) / 10000 = 4 bps exactly.
    assert not evaluate(cross("4"), view, quote("B", "10004", "10005", 10))  # edge == hurdle: no wake
    assert evaluate(cross("4"), view, quote("B", "10004.01", "10005", 10))  # one tick above
    assert evaluate(cross("3.99"), view, quote("B", "10004", "10005", 10))
    # A hurdle of 1/3 bps: (bid - 10000) * 10_000 * 3 > 1 * 10000 <=> bid > 10000.3333...
    third = WakeSpec((CrossEdge(X, (Hurdle("A", "B", Ratio(1, 3)),), 100, Ratio(0, 1)),))
    assert not evaluate(third, view, quote("B", "10000.33", "10001", 10))
    assert evaluate(third, view, quote("B", "10000.34", "10001", 10))


def test_cross_edge_freshness_size_and_instrument() -> None:
    view = ReferenceMarketView()
    view.apply(quote("A", "9999", "10000", 0))
    rich = ("10010", "10011")
    assert evaluate(cross("4", max_age=100), view, quote("B", *rich, 100))  # age == max age: still fresh
    assert not evaluate(cross("4", max_age=100), view, quote("B", *rich, 101))
    assert not evaluate(cross("4", min_size="1.5"), view, quote("B", *rich, 10))  # A's ask size 1 < 1.5
    assert not evaluate(cross("4"), view, quote("B", *rich, 10, bid_size="0.4"))
    other = QuoteTick(envelope=env(10), venue="B", instrument="ETHUSDT", bid_price=D("10010"), bid_size=D(1),
                      ask_price=D("10011"), ask_size=D(1))  # fmt: skip
    assert not evaluate(cross("4"), view, other)
    assert not evaluate(cross("4"), view, quote("B", "10010", "0", 10))  # an unpriced side is not usable


def test_not_before_and_timer() -> None:
    view = ReferenceMarketView()
    view.apply(quote("A", "9999", "10000", 0))
    rich = quote("B", "10010", "10011", 50)
    spec = cross("4")
    assert not evaluate(WakeSpec(spec.predicates, not_before_ns=51), view, rich)
    assert evaluate(WakeSpec(spec.predicates, not_before_ns=50), view, rich)  # time == cooldown end
    assert evaluate(WakeSpec(timer_at_ns=50), view, rich) and not evaluate(WakeSpec(timer_at_ns=51), view, rich)
    assert evaluate(WakeSpec(timer_at_ns=50, not_before_ns=99), view, rich)  # the timer ignores not_before
    assert not evaluate(NEVER, view, rich)


def test_always_book_not_clean_and_level_touched() -> None:
    view = ReferenceMarketView()
    snap = BookSnapshot(envelope=env(0), venue="A", instrument=X, last_update_id=100,
                        bids=((D("99"), D("1")),), asks=((D("101"), D("1")),))  # fmt: skip
    assert evaluate(WakeSpec((BookNotClean(),)), view, snap) is False  # a good snapshot applies cleanly
    view.apply(snap)

    def delta(first: int, final: int, bids: Any = (), asks: Any = ()) -> BookDelta:
        return BookDelta(envelope=env(1), venue="A", instrument=X, first_update_id=first, final_update_id=final,
                         bids=bids, asks=asks)  # fmt: skip

    assert not evaluate(WakeSpec((BookNotClean(),)), view, delta(101, 101, bids=((D("98"), D("1")),)))
    assert evaluate(WakeSpec((BookNotClean(),)), view, delta(103, 104))  # a gap
    assert not evaluate(WakeSpec((BookNotClean(frozenset({("B", X)})),)), view, delta(103, 104))
    assert evaluate(WakeSpec((BookNotClean(),)), view, delta(101, 101, bids=((D("102"), D("1")),)))  # crosses
    trade = TradeTick(envelope=env(1), venue="A", instrument=X, price=D("100"), size=D("1"),
                      aggressor_side=Side.BUY, venue_trade_id="1")  # fmt: skip
    assert evaluate(WakeSpec((Always(frozenset({RowKind.TRADE}), frozenset({("A", X)})),)), view, trade)
    assert not evaluate(WakeSpec((Always(frozenset({RowKind.QUOTE})),)), view, trade)
    assert not evaluate(WakeSpec((Always(keys=frozenset({("B", X)})),)), view, trade)
    touched = WakeSpec((LevelTouched(("A", X), at_or_below=ratio(D("99")), at_or_above=ratio(D("101.5"))),))
    assert evaluate(touched, view, delta(101, 101, bids=((D("99"), D("0")),)))
    assert evaluate(touched, view, delta(101, 101, asks=((D("101.5"), D("2")),)))
    assert not evaluate(touched, view, delta(101, 101, asks=((D("101.4"), D("2")),)))
    assert evaluate(touched, view, trade)


# ---- streams on the edges: gated == reference, and sound ---------------------------------------------------

FEES = {"A": "1", "B": "2"}
HURDLE = D(4)  # 1 + 2 taker bps + min edge 1
COOLDOWN, MAX_AGE, SAMPLE, ORDER_LATENCY, RESPONSE_LATENCY = 5_000, 1_000, 10_000, 300, 200


def _config() -> RunConfig:
    return RunConfig.model_validate({
        "account": "acc", "quote_currency": "USDT", "starting_equity": "100000",
        "order_latency_ns": ORDER_LATENCY, "response_latency_ns": RESPONSE_LATENCY,
        "equity_sample_interval_ns": SAMPLE,
        "venues": {v: {"maker_bps": "1", "taker_bps": fee} for v, fee in FEES.items()},
        "strategy": {"strategy_id": "s", "instrument": X, "venues": ["A", "B"], "taker_fee_bps": FEES,
                     "min_edge_bps": "1", "max_quote_age_ns": MAX_AGE, "min_size": "0.001",
                     "max_order_quantity": "0.01", "max_notional_per_trade": "100000", "quantity_step": "0.001",
                     "cooldown_ns": COOLDOWN, "max_legs_in_flight": 1, "exit_edge_bps": "-20"},
        "risk": {"max_order_notional": "1000", "max_position_per_asset_venue": "0.02",
                 "max_gross_exposure": "100000", "max_open_orders": 10, "price_collar_bps": "50",
                 "max_orders_per_venue_per_second": 100, "max_drawdown_fraction": "0.5"},
    })  # fmt: skip


CONFIG = _config()


def _definition(venue: str) -> InstrumentDefined:
    return InstrumentDefined(envelope=env(0), venue=venue, instrument=X, base="BTC", quote="USDT",
                             settlement="USDT", kind="spot", contract_size=D(1), tick_size=D("0.01"),
                             lot_size=D("0.001"), min_notional=D(0), maker_fee_bps=D(1),
                             taker_fee_bps=D(FEES[venue]))  # fmt: skip


class EdgeStreams(RuleBasedStateMachine):
    """Builds a stream rule by rule, with times and prices placed on the thresholds the specs test; a
    reference kernel follows it so that the next threshold (cooldown end, due time, ...) is known."""

    @initialize()
    def start(self) -> None:
        self.events: list[EventBase] = [_definition("A"), _definition("B")]
        self.kernel = Kernel(build_deciders(CONFIG), simulated_venues(CONFIG), lambda e: None)
        for event in self.events:
            self.kernel.feed(event)
        self.t = 1
        self.update_id = {"A": 0, "B": 0}

    def _add(self, event: EventBase) -> None:
        self.events.append(event)
        self.kernel.feed(event)

    def _quote(self, venue: str, bid: D, ask: D) -> None:
        self._add(quote(venue, str(bid), str(ask), self.t))

    @rule(buy=st.sampled_from("AB"), offset=st.sampled_from([-1, 0, 1]), dt=st.sampled_from([0, 1, 7]))
    def cross_on_the_hurdle(self, buy: str, offset: int, dt: int) -> None:
        """The sell venue's bid placed at the buy venue's ask x (1 + hurdle) exactly, or a tick either side."""
        sell = "B" if buy == "A" else "A"
        self.t += dt
        last = self.kernel.market.quote(buy, X)
        if last is None or last.ask_price <= 0:
            self._quote(buy, D("9999.99"), D("10000"))
            last = self.kernel.market.quote(buy, X)
        assert last is not None
        bid = last.ask_price * (1 + HURDLE / 10_000) + offset * D("0.01")
        self._quote(sell, bid, bid + D("0.02"))

    @rule(venue=st.sampled_from("AB"), price=st.sampled_from(["9990", "10000", "10010", "0"]))
    def plain_quote(self, venue: str, price: str) -> None:
        self.t += 3
        self._quote(venue, D(price), D(price) + D("0.5"))

    @rule(threshold=st.sampled_from(["cooldown_end", "quote_age_limit", "just_past_age", "sample_boundary",
                                  "venue_due", "strategy_due"]),
          kind=st.sampled_from(["requote", "trade"]))  # fmt: skip
    def jump_to_a_threshold(self, threshold: str, kind: str) -> None:
        states = self.kernel.states()
        spread = states["spread.s"]
        times: dict[str, int | None] = {
            "cooldown_end": None if spread.last_trade_ns is None else spread.last_trade_ns + COOLDOWN,
            "sample_boundary": (self.t // SAMPLE + 1) * SAMPLE,
            "venue_due": min((t for v in self.kernel._venues if (t := v.wake().timer_at_ns) is not None),
                             default=None),  # fmt: skip
            "strategy_due": self.kernel.wake_specs()[1].not_before_ns,
        }
        quotes = [q for v in "AB" if (q := self.kernel.market.quote(v, X)) is not None]
        oldest = min((q.envelope.event_time_ns for q in quotes), default=None)
        times["quote_age_limit"] = None if oldest is None else oldest + MAX_AGE
        times["just_past_age"] = None if oldest is None else oldest + MAX_AGE + 1
        at = times[threshold]
        if at is not None and at > self.t:
            self.t = at
        venue = "A" if self.t % 2 else "B"
        last = self.kernel.market.quote(venue, X)
        if kind == "requote" and last is not None:
            self._quote(venue, last.bid_price, last.ask_price)
        else:
            self._add(TradeTick(envelope=env(self.t), venue=venue, instrument=X, price=D("10000"), size=D("0.5"),
                                aggressor_side=Side.SELL, venue_trade_id=str(len(self.events))))  # fmt: skip

    @rule(venue=st.sampled_from("AB"), gap=st.booleans(), snapshot=st.booleans())
    def book(self, venue: str, gap: bool, snapshot: bool) -> None:
        self.t += 2
        last = self.update_id[venue]
        if snapshot or last == 0:
            self.update_id[venue] = last + 10
            self._add(BookSnapshot(envelope=env(self.t), venue=venue, instrument=X, last_update_id=last + 10,
                                   bids=((D("9999"), D("2")),), asks=((D("10001"), D("2")),)))  # fmt: skip
            return
        first = last + (3 if gap else 1)
        self.update_id[venue] = first
        self._add(BookDelta(envelope=env(self.t), venue=venue, instrument=X, first_update_id=first,
                            final_update_id=first, bids=((D("9998"), D("1")),), asks=()))  # fmt: skip

    @rule(command=st.sampled_from(["stop", "start", "kill", "release"]))
    def operator(self, command: str) -> None:
        self.t += 1
        if command in ("stop", "start"):
            cls = StopStrategy if command == "stop" else StartStrategy
            self._add(cls(envelope=env(self.t), operator="op"))
        elif command == "kill":
            self._add(EngageKillSwitch(envelope=env(self.t), reason="test", operator="op"))
        else:
            self._add(ReleaseKillSwitch(envelope=env(self.t), reason="test", operator="op"))

    @invariant()
    def gated_equals_reference_and_is_sound(self) -> None:
        reference = full_run(build_deciders(CONFIG), simulated_venues(CONFIG), self.events)
        gated, _ = gated_run(build_deciders(CONFIG), simulated_venues(CONFIG), self.events)
        assert gated == reference
        audit, audited = audit_run(build_deciders(CONFIG), simulated_venues(CONFIG), self.events)
        assert audit.breaches == [] and audited == reference


EdgeStreams.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
test_streams_on_the_edges = EdgeStreams.TestCase
