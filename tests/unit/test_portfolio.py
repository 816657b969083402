from __future__ import annotations

import uuid
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import Envelope, EquitySampled, EventBase, OrderFilled, QuoteTick, input_event_id
from domain.portfolio import (
    InstrumentSpec,
    PortfolioConfig,
    PortfolioDecider,
    PortfolioState,
    cost_basis,
    equity,
    parse_instrument,
    total_cash,
    unrealized_pnl,
)
from domain.values import Liquidity, Side

pytestmark = pytest.mark.unit

VENUE, SYMBOL = "binance-spot", "BTCUSDT"
SEC = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.seq = 0

    def env(self, time_ns: int) -> Envelope:
        self.seq += 1
        return Envelope(event_id=input_event_id("s", "p", self.seq), session_id="s", sequence=self.seq,
                        event_time_ns=time_ns, ingest_time_ns=time_ns, source="test")  # fmt: skip


def fill(c: Clock, side: Side, qty: str, price: str, fee: str, trade: str, t: int = 0,
         instrument: str = SYMBOL, fee_currency: str = "USDT") -> OrderFilled:  # fmt: skip
    return OrderFilled(envelope=c.env(t), order_id=uuid.UUID(int=1), venue=VENUE, instrument=instrument, side=side,
                       price=D(price), quantity=D(qty), fee=D(fee), fee_currency=fee_currency,
                       liquidity=Liquidity.TAKER, venue_trade_id=trade, cumulative_quantity=D(qty),
                       leaves_quantity=D(0))  # fmt: skip


def quote(c: Clock, bid: str, ask: str, t: int = 0) -> QuoteTick:
    return QuoteTick(envelope=c.env(t), venue=VENUE, instrument=SYMBOL, bid_price=D(bid), bid_size=D(1),
                     ask_price=D(ask), ask_size=D(1))  # fmt: skip


def run(decider: PortfolioDecider, state: PortfolioState, event: EventBase) -> list[EventBase]:
    derived = decider.decide(state, event)
    decider.evolve(state, event)
    for d in derived:
        assert decider.decide(state, d) == []
        decider.evolve(state, d)
    return derived


def start() -> tuple[PortfolioDecider, PortfolioState]:
    decider = PortfolioDecider(PortfolioConfig(initial_cash=((VENUE, "USDT", D(1000)),)))
    return decider, decider.initial_state()


def test_average_cost_realized_unrealized_and_fees_by_hand() -> None:
    c = Clock()
    decider, state = start()
    run(decider, state, fill(c, Side.BUY, "2", "100", "0.2", "t1"))
    run(decider, state, fill(c, Side.BUY, "1", "130", "0.13", "t2"))
    pos = state.positions[(VENUE, "BTC")]
    assert pos.quantity == 3 and pos.avg_cost == D(110)  # (2*100 + 1*130) / 3
    run(decider, state, quote(c, "119", "121"))  # mid 120
    assert unrealized_pnl(state) == D(30)  # 3 * (120 - 110)
    run(decider, state, fill(c, Side.SELL, "2", "125", "0.25", "t3"))
    assert state.realized_pnl == D(30)  # 2 * (125 - 110)
    assert pos.quantity == 1 and pos.avg_cost == D(110)
    assert unrealized_pnl(state) == D(10)  # 1 * (120 - 110)
    assert state.fees == D("0.58")
    assert total_cash(state) == D("919.42")  # 1000 - 200 - 130 + 250 - 0.58
    assert equity(state) == D("1039.42")  # 1000 + 30 realized + 10 unrealized - 0.58 fees
    # flip: sell 3 at 100 closes the 1 (realized -10) and opens a short of 2 at 100
    run(decider, state, fill(c, Side.SELL, "3", "100", "0", "t4"))
    assert state.realized_pnl == D(20) and pos.quantity == -2 and pos.avg_cost == D(100)
    assert unrealized_pnl(state) == D(-40)  # -2 * (120 - 100)


def test_duplicate_fill_ignored_and_base_fee_valued_at_fill_price() -> None:
    c = Clock()
    decider, state = start()
    f = fill(c, Side.BUY, "1", "100", "0.001", "t1", fee_currency="BTC")
    run(decider, state, f)
    run(decider, state, f)
    run(decider, state, fill(c, Side.BUY, "1", "100", "0.001", "t1", fee_currency="BTC"))  # redelivered copy
    assert state.positions[(VENUE, "BTC")].quantity == 1
    assert state.fees == D("0.1") and total_cash(state) == D("899.9")


def test_equity_sampled_once_per_interval_on_event_time() -> None:
    c = Clock()
    decider, state = start()
    times = [5 * SEC, 30 * SEC, 60 * SEC, 61 * SEC, 185 * SEC]
    samples: list[tuple[int, EventBase]] = []
    run(decider, state, fill(c, Side.BUY, "1", "100", "0.1", "t1", t=times[0]))
    for t in times[1:]:
        samples += [(t, e) for e in run(decider, state, quote(c, "109", "111", t))]
    assert [t for t, _ in samples] == [60 * SEC, 185 * SEC]
    first = samples[0][1]
    assert isinstance(first, EquitySampled)
    # valued just before the 60 s quote: last mid 110 (from the 30 s quote) on 1 BTC bought at 100
    assert (first.equity, first.cash, first.unrealized_pnl, first.fees) == (D("1009.9"), D("899.9"), D(10), D("0.1"))
    assert first.envelope.event_time_ns == 60 * SEC and first.envelope.source == "portfolio"


def test_first_event_samples_the_starting_equity() -> None:
    c = Clock()
    decider, state = start()
    out = run(decider, state, quote(c, "1", "2", t=7))
    assert len(out) == 1 and isinstance(out[0], EquitySampled) and out[0].equity == D(1000)


def test_instrument_parsing_and_override() -> None:
    assert parse_instrument("BTCUSDT") == InstrumentSpec("BTC", "USDT")
    assert parse_instrument("BTC-USD") == InstrumentSpec("BTC", "USD")
    assert parse_instrument("BTCUSD_PERP") == InstrumentSpec("BTC", "USD")
    assert parse_instrument("ETHBTC") == InstrumentSpec("ETH", "BTC")
    assert parse_instrument("BTCFDUSD") == InstrumentSpec("BTC", "FDUSD")
    config = PortfolioConfig(instruments={"XBTM5": InstrumentSpec("BTC", "USD", D(5))})
    decider = PortfolioDecider(config)
    state = decider.initial_state()
    run(decider, state, fill(Clock(), Side.BUY, "2", "100", "0", "t1", instrument="XBTM5"))
    assert state.positions[(VENUE, "BTC")].quantity == 10 and state.cash[(VENUE, "USD")] == D(-1000)


_fills = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 500), st.integers(1, 5000), st.integers(0, 50),
              st.sampled_from(["BTCUSDT", "ETHUSDT"])),
    max_size=40,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(_fills)
def test_conservation_cash_plus_cost_equals_start_plus_realized_minus_fees(
    fills: list[tuple[Side, int, int, int, str]],
) -> None:
    c = Clock()
    decider, state = start()
    net: dict[str, D] = {}
    for i, (side, qty, price, fee, instrument) in enumerate(fills):
        f = fill(c, side, str(D(qty) / 100), str(D(price) / 10), str(D(fee) / 100), f"t{i}", instrument=instrument)
        run(decider, state, f)
        net[instrument] = net.get(instrument, D(0)) + side.sign * f.quantity
        assert total_cash(state) + cost_basis(state) == D(1000) + state.realized_pnl - state.fees
    for instrument, quantity in net.items():
        base = instrument.removesuffix("USDT")
        assert state.positions[(VENUE, base)].quantity == quantity
