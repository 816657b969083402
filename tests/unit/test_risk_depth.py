"""Risk values market orders on the synced L2 book, and every amount by the instrument's specification.

Hand-computed: venue A's book (Binance spot sync rules, snapshot lastUpdateId 100) holds
    asks 100.10 x 1, 100.20 x 2, 100.50 x 5        bids 99.90 x 1, 99.80 x 2, 99.00 x 5
so a market buy of 2.5 walks to 1 x 100.10 + 1.5 x 100.20 = 250.40, where the top-of-book quote alone (1 at
100.10, the rest at the collar's 100.50) says 250.85.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.events import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    InstrumentDefined,
    QuoteTick,
    RiskCheckRejected,
)
from domain.risk import RiskDecider
from domain.values import Side
from tests.unit.decider_harness import DeciderHarness
from tests.unit.test_risk import INSTRUMENT, Harness, fill, limits, passed, rejected

pytestmark = pytest.mark.unit

D = Decimal
ASKS = ((D("100.10"), D("1")), (D("100.20"), D("2")), (D("100.50"), D("5")))
BIDS = ((D("99.90"), D("1")), (D("99.80"), D("2")), (D("99.00"), D("5")))


class BookHarness(Harness):
    def snapshot(self, last_update_id: int = 100, instrument: str = INSTRUMENT, t: int = 0) -> None:
        self.feed(BookSnapshot(envelope=self.env(t), venue="A", instrument=instrument,
                               last_update_id=last_update_id, bids=BIDS, asks=ASKS))  # fmt: skip

    def delta(
        self, first: int, final: int, asks: tuple[tuple[Decimal, Decimal], ...] = (), t: int = 0
    ) -> None:
        self.feed(BookDelta(envelope=self.env(t), venue="A", instrument=INSTRUMENT, first_update_id=first,
                            final_update_id=final, bids=(), asks=asks))  # fmt: skip

    def ticker(self, update_id: int | None, t: int = 0) -> None:
        """The exchange's top of book (bookTicker) with the update id it belongs to."""
        self.feed(QuoteTick(envelope=self.env(t), venue="A", instrument=INSTRUMENT, bid_price=D("99.90"),
                            bid_size=D("1"), ask_price=D("100.10"), ask_size=D("1"),
                            venue_update_id=update_id))  # fmt: skip


def detail(verdict: object) -> str:
    assert isinstance(verdict, RiskCheckRejected), verdict
    return verdict.detail


def test_a_market_order_walks_the_synced_book() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    h.ticker(100)  # the ticker of the snapshot's own update: the book is as fresh as the quote
    verdict = h.order(Side.BUY, "2.5", price=None)[1]
    rejected(verdict, "max_order_notional", "250", "250.40")  # 1 x 100.10 + 1.5 x 100.20
    assert detail(verdict) == "walked the synced L2 book at update 100: 1 x 100.10 + 1.5 x 100.20"
    passed(h.order(Side.BUY, "2.49", price=None)[1])  # 100.10 + 1.49 x 100.20 = 249.398
    # A sell of 4 walks the bids: 99.90 + 2 x 99.80 + 1 x 99.00 = 398.50
    rejected(h.order(Side.SELL, "4", price=None)[1], "max_order_notional", "250", "398.50")


def test_a_delta_moves_what_the_walk_pays() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    h.delta(95, 101, asks=((D("100.10"), D("0")),))  # straddles 101; the best ask 100.10 is gone
    # 2 x 100.20 + 0.5 x 100.50 = 250.65 for 2.5
    rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.65")
    book = h.view.book("A", INSTRUMENT)
    assert book is not None and book.applied_update_id == 101


def test_beyond_the_book_the_rest_is_valued_at_the_collar_never_better_than_the_last_level() -> None:
    h2 = BookHarness(limits(max_order_notional=D("1000")))
    h2.snapshot()
    h2.ticker(100)  # mid 100.00, collar 50 bps: 100.50 for a buy, 99.50 for a sell
    # Buy 10: 100.10 + 2 x 100.20 + 5 x 100.50 = 803.00 for 8, 2 beyond at max(100.50, 100.50): 1004.00
    verdict = h2.order(Side.BUY, "10", price=None)[1]
    rejected(verdict, "max_order_notional", "1000", "1004.00")
    assert detail(verdict).endswith("+ 2 beyond the known depth x 100.50")
    # Sell 10: 99.90 + 2 x 99.80 + 5 x 99.00 = 694.50 for 8, 2 beyond at min(99.50, 99.00) = 99.00: 892.50
    verdict = h2.order(Side.SELL, "10", price=None)[1]
    assert detail(h2.order(Side.SELL, "10.1", price=None)[1]).endswith("beyond the known depth x 99.00")
    passed(verdict)  # 892.50 <= 1000


def test_a_quote_newer_than_the_book_falls_back_to_the_quote_and_says_so() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    h.ticker(105)  # the exchange is at update 105, the book at 100
    verdict = h.order(Side.BUY, "2.5", price=None)[1]
    rejected(verdict, "max_order_notional", "250", "250.85")  # 100.10 + 1.5 x collar 100.50
    assert detail(verdict).startswith(
        "walked the top-of-book quote (L2 book at update 100 older than the quote)"
    )
    h.delta(101, 105)  # the book catches up: walked again
    rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.40")


def test_an_out_of_sync_book_is_not_walked() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    h.ticker(None, t=5)  # no update id: compared by event time, the book (t=0) is older
    assert "older than the quote" in detail(h.order(Side.BUY, "2.5", price=None)[1])
    h.delta(95, 101, t=6)
    rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.40")
    h.delta(103, 104)  # gap: 102 is missing
    verdict = h.order(Side.BUY, "2.5", price=None)[1]
    rejected(verdict, "max_order_notional", "250", "250.85")
    assert "(L2 book out of sync)" in detail(verdict)
    h.snapshot(110, t=7)  # rebuilt at the next snapshot
    rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.40")
    h.feed(BookResyncNeeded(envelope=h.env(), venue="A", instrument=INSTRUMENT, expected_update_id=111,
                            received_first_update_id=120, reason="disconnect"))  # fmt: skip
    assert "(L2 book out of sync)" in detail(h.order(Side.BUY, "2.5", price=None)[1])


def test_without_a_quote_the_book_alone_values_a_market_order() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.40")


def test_risk_walks_books_only_for_the_instruments_it_is_given() -> None:
    h = BookHarness(limits(max_order_notional=D("250")))
    h.decider = h.deciders[0] = RiskDecider("acc-1", limits(max_order_notional=D("250")),
                                            book_instruments=("ETH-USDT",))  # fmt: skip
    h.state = h.decider.initial_state()
    h.snapshot()
    h.snapshot(instrument="ETH-USDT")
    assert h.view.book("A", INSTRUMENT) is not None  # the view has it; risk does not walk it
    h.quote()
    assert "(no L2 book)" in detail(h.order(Side.BUY, "2.5", price=None)[1])


# ------------------------------------------------------------------ instruments


def coinm(venue: str = "A") -> InstrumentDefined:
    """Binance COIN-M BTCUSD_PERP: one contract is 100 USD, settled in BTC."""
    return InstrumentDefined(envelope=DeciderHarness(RiskDecider("x")).env(), venue=venue, instrument=INSTRUMENT,
                             base="BTC", quote="USD", settlement="BTC", kind="inverse", contract_size=D("100"),
                             tick_size=D("0.1"), lot_size=D("1"), min_notional=D("0"), maker_fee_bps=D("2"),
                             taker_fee_bps=D("5"))  # fmt: skip


def test_inverse_contracts_are_worth_their_face_value_at_any_price() -> None:
    h = Harness(limits(max_order_notional=D("1000"), max_position_per_asset_venue=D("50")))
    h.feed(coinm())
    h.quote(bid="59990", ask="60010")
    passed(h.order(Side.BUY, "10", price="60000")[1])  # 10 x 100 USD = 1,000 USD, not 600,000
    rejected(h.order(Side.BUY, "11", price="30000")[1], "max_order_notional", "1000", "1100")
    rejected(h.order(Side.SELL, "11", price=None)[1], "max_order_notional", "1000", "1100")


def test_inverse_gross_exposure_and_positions_count_contracts() -> None:
    h = Harness(limits(max_gross_exposure=D("2500"), max_position_per_asset_venue=D("30")))
    h.feed(coinm())
    h.quote(bid="59990", ask="60010")
    order, verdict = h.order(Side.BUY, "20", price="60000")
    passed(verdict)
    h.feed(fill(h.env(), order, "t1", "20"))  # long 20 contracts = 2,000 USD
    # +6 contracts: 26 x 100 = 2,600 USD > 2,500 (price x contracts would say 1,560,000)
    rejected(h.order(Side.BUY, "6", price="60000")[1], "max_gross_exposure", "2500", "2600")
    # The position limit is in contracts: 20 + 11 = 31 > 30
    h2 = Harness(limits(max_position_per_asset_venue=D("30")))
    h2.feed(coinm())
    h2.quote(bid="59990", ask="60010")
    h2.position(Side.BUY, "20", price="60000")
    rejected(h2.order(Side.BUY, "11", price="60000")[1], "max_position", "30", "31")


def test_linear_contracts_count_their_contract_size() -> None:
    h = Harness(limits(max_order_notional=D("1000"), max_position_per_asset_venue=D("5000")))
    spec = coinm().model_copy(update={"kind": "linear", "quote": "USDT", "settlement": "USDT",
                                      "contract_size": D("0.01")})  # fmt: skip
    h.feed(spec)
    h.quote()
    # a contract is 0.01 BTC: 1,000 contracts at 100.00 = 10 BTC = 1,000.00 USDT
    passed(h.order(Side.BUY, "1000", price="100.00")[1])
    rejected(h.order(Side.BUY, "1001", price="100.00")[1], "max_order_notional", "1000", "1001.00")


def test_a_callers_decimal_context_changes_nothing() -> None:
    """Risk runs in the domain's one context (domain.values.DECIMAL_CONTEXT), whatever the caller set."""
    from decimal import localcontext

    h = BookHarness(limits(max_order_notional=D("250")))
    h.snapshot()
    with localcontext() as ctx:
        ctx.prec = 3  # would round 250.40 to 250 and pass the order
        rejected(h.order(Side.BUY, "2.5", price=None)[1], "max_order_notional", "250", "250.40")
