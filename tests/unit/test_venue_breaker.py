"""The per-venue circuit breaker (adapters/exchanges/breaker.py), what risk does with its VenueCircuitChanged
events (rule "venue_breaker"), and the client order ids the live venue derives from order ids."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest

from adapters.exchanges.breaker import BreakerConfig, CircuitBreaker
from adapters.exchanges.client_ids import client_order_id
from domain.events import PlaceOrder, QuoteTick, RiskCheckPassed, RiskCheckRejected, VenueCircuitChanged
from domain.risk import RiskDecider
from domain.values import OrderType, Side
from tests.unit.decider_harness import DeciderHarness

pytestmark = pytest.mark.unit

SECOND = 1_000_000_000


def test_the_breaker_opens_at_the_threshold_probes_after_the_open_time_and_closes_on_an_answer() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=3, open_for_ns=5 * SECOND))
    assert breaker.failure(1, "timeout") is None and breaker.failure(2, "HTTP 503") is None
    assert breaker.success("order") is None  # an answer resets the count while closed
    assert breaker.failure(3, "a") is None and breaker.failure(4, "b") is None
    opened = breaker.failure(5, "HTTP 429")
    assert opened is not None and (opened.state, opened.failures, opened.reason) == ("open", 3, "HTTP 429")
    assert not breaker.allows_orders
    assert breaker.probe_due(5 + 5 * SECOND - 1) is None  # not yet
    probing = breaker.probe_due(5 + 5 * SECOND)
    assert probing is not None and probing.state == "half_open" and not breaker.allows_orders
    closed = breaker.success("probe")
    assert closed is not None and (closed.state, closed.failures) == ("closed", 0) and breaker.allows_orders


def test_a_failed_probe_opens_the_breaker_again_for_another_open_time() -> None:
    breaker = CircuitBreaker(BreakerConfig(failure_threshold=1, open_for_ns=SECOND))
    assert breaker.failure(0, "x") is not None
    assert breaker.probe_due(SECOND) is not None
    again = breaker.failure(SECOND + 7, "still down")
    assert again is not None and again.state == "open" and breaker.opened == 2
    assert breaker.probe_due(2 * SECOND) is None and breaker.probe_due(2 * SECOND + 7) is not None


def _order(h: DeciderHarness, venue: str) -> PlaceOrder:
    return PlaceOrder(envelope=h.env(), order_id=uuid.uuid4(), account="acc", strategy_id="s", venue=venue,
                      instrument="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=Decimal("0.01"),
                      limit_price=Decimal("50000"))  # fmt: skip


def _circuit(h: DeciderHarness, state: str, failures: int, reason: str) -> None:
    assert h.feed(VenueCircuitChanged(envelope=h.env(), venue="A", state=state, failures=failures,  # type: ignore[arg-type]
                                      reason=reason)) == []  # fmt: skip


def test_risk_refuses_orders_to_a_venue_while_its_breaker_is_not_closed_naming_it() -> None:
    h = DeciderHarness(RiskDecider("acc"))
    for venue in ("A", "B"):
        h.feed(QuoteTick(envelope=h.env(), venue=venue, instrument="BTCUSDT", bid_price=Decimal("49999"),
                         bid_size=Decimal(1), ask_price=Decimal("50001"), ask_size=Decimal(1)))  # fmt: skip
    _circuit(h, "open", 3, "place order: RequestTimeout")
    (verdict,) = h.feed(_order(h, "A"))
    assert isinstance(verdict, RiskCheckRejected)
    assert (verdict.rule, verdict.limit, verdict.actual) == ("venue_breaker", 0, 3)
    assert verdict.detail == "circuit breaker of A is open: place order: RequestTimeout"
    assert isinstance(h.feed(_order(h, "B"))[0], RiskCheckPassed)  # another venue trades on
    _circuit(h, "half_open", 3, "probing the venue")
    (verdict,) = h.feed(_order(h, "A"))
    assert isinstance(verdict, RiskCheckRejected) and "is half_open" in verdict.detail
    _circuit(h, "closed", 0, "probe answered")
    assert isinstance(h.feed(_order(h, "A"))[0], RiskCheckPassed)


BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance's documented newClientOrderId rule
BYBIT_ORDER_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
OKX_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def test_client_order_ids_are_the_order_id_within_each_exchanges_rules() -> None:
    order_id = uuid.UUID("0f6ad6b5-6e0b-4bd2-9d6e-5b1f2c1e7a90")
    binance = client_order_id("binance", order_id)
    assert binance == "cse0f6ad6b56e0b4bd29d6e5b1f2c1e7a90" and BINANCE_CLIENT_ID.match(binance)
    assert client_order_id("binanceusdm", order_id) == binance  # the same account: one id space
    assert BYBIT_ORDER_LINK_ID.match(client_order_id("bybit", order_id))
    okx = client_order_id("okx", order_id)
    assert len(okx) == 32 and OKX_CL_ORD_ID.match(okx) and okx == binance[:32]
    assert client_order_id("kraken", order_id) == client_order_id("coinbase", order_id) == str(order_id)
    assert client_order_id("binance", uuid.uuid4()) != binance
    with pytest.raises(ValueError, match=r"no client order id rule for exchange 'deribit' \(known: "):
        client_order_id("deribit", order_id)
