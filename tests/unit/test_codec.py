"""The canonical codec: round trips, refusals, and the upcaster path."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from pydantic import ValidationError

from domain.events import (
    EVENT_TYPES,
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    CancelOrder,
    CurrencyValuation,
    Digest,
    DrawdownBreached,
    DrawdownHaltReleased,
    EngageKillSwitch,
    Envelope,
    EquitySampled,
    EventBase,
    EventDecodeError,
    FilesImported,
    ImportedFile,
    InputsMerged,
    InstrumentDefined,
    KillSwitchEngaged,
    KillSwitchReleased,
    LegExposureUnresolved,
    ModelScored,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTransitionRefused,
    PlaceOrder,
    QuoteTick,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    SessionEnded,
    SessionStarted,
    SpreadOpportunityDetected,
    StartStrategy,
    StopStrategy,
    TradeTick,
    UpdateRiskLimits,
    VenueCircuitChanged,
    decode,
    decode_mapping,
    encode,
    input_event_id,
    json_schemas,
)
from domain.events import codec as codec_module
from domain.values import Liquidity, OrderType, RiskLimits, Side, TimeInForce

pytestmark = pytest.mark.unit

D = Decimal
ENV = Envelope(
    event_id=input_event_id("s", "in", 7),
    session_id="s",
    sequence=7,
    event_time_ns=1_700_000_000_000_000_000,
    ingest_time_ns=1_700_000_000_000_000_123,
    source="binance-spot",
)
OID = uuid.UUID("00000000-0000-5000-8000-000000000001")
FILL: dict[str, Any] = {
    "order_id": OID,
    "venue": "A",
    "instrument": "BTC-USDT",
    "side": Side.BUY,
    "price": D("30000.10"),
    "quantity": D("0.5"),
    "fee": D("0.0150"),
    "fee_currency": "USDT",
    "liquidity": Liquidity.TAKER,
    "venue_trade_id": "T1",
    "cumulative_quantity": D("0.5"),
    "leaves_quantity": D("0"),
}

SAMPLES: list[EventBase] = [
    QuoteTick(envelope=ENV, venue="A", instrument="BTC-USDT", bid_price=D("30000.1"), bid_size=D("1.5"),
              ask_price=D("30000.2"), ask_size=D("0.25"), venue_update_id=42),
    TradeTick(envelope=ENV, venue="A", instrument="BTC-USDT", price=D("30000.1"), size=D("0.01"),
              aggressor_side=Side.SELL, venue_trade_id="t-9"),
    BookSnapshot(envelope=ENV, venue="A", instrument="BTC-USDT", last_update_id=10,
                 bids=((D("1.0"), D("2")),), asks=((D("1.1"), D("3")),)),
    BookDelta(envelope=ENV, venue="A", instrument="BTC-USDT", first_update_id=11, final_update_id=12,
              previous_final_update_id=10, bids=((D("1.0"), D("0")),), asks=()),
    InstrumentDefined(envelope=ENV, venue="binance-coinm", instrument="BTCUSD_PERP", base="BTC", quote="USD",
                      settlement="BTC", kind="inverse", contract_size=D("100"), tick_size=D("0.1"),
                      lot_size=D("1"), min_notional=D("0"), maker_fee_bps=D("2"), taker_fee_bps=D("5")),
    BookResyncNeeded(envelope=ENV, venue="A", instrument="BTC-USDT", expected_update_id=11,
                     received_first_update_id=15, reason="gap"),
    SpreadOpportunityDetected(envelope=ENV, opportunity_id=OID, strategy_id="s1", instrument="BTC-USDT",
                              buy_venue="A", sell_venue="B", buy_price=D("100"), sell_price=D("100.26"),
                              quantity=D("2"), gross_edge_bps=D("26"), net_edge_bps=D("6")),
    ModelScored(envelope=ENV, model_hash="abc", instrument="BTC-USDT", score=D("0.1234")),
    PlaceOrder(envelope=ENV, order_id=OID, account="acc", strategy_id="s1", venue="A", instrument="BTC-USDT",
               side=Side.BUY, order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, quantity=D("1"),
               limit_price=D("100"), leg_group_id=OID),
    CancelOrder(envelope=ENV, order_id=OID, venue="A", reason="stale"),
    EngageKillSwitch(envelope=ENV, reason="r", operator="ops"),
    ReleaseKillSwitch(envelope=ENV, reason="r", operator="ops"),
    UpdateRiskLimits(envelope=ENV, limits=RiskLimits(max_order_notional=D("5000")), operator="ops"),
    StartStrategy(envelope=ENV, strategy_id="s1", operator="ops"),
    StopStrategy(envelope=ENV, strategy_id="s1", operator="ops"),
    ReleaseDrawdownHalt(envelope=ENV, reason="r", operator="ops", account="acc"),
    OrderAccepted(envelope=ENV, order_id=OID, venue="A", venue_order_id="v-1"),
    OrderRejected(envelope=ENV, order_id=OID, venue="A", reason="insufficient balance"),
    OrderPartiallyFilled(envelope=ENV, **{**FILL, "leaves_quantity": D("0.5")}),
    OrderFilled(envelope=ENV, **FILL),
    OrderCanceled(envelope=ENV, order_id=OID, venue="A", reason="ioc"),
    OrderExpired(envelope=ENV, order_id=OID, venue="A"),
    OrderTransitionRefused(envelope=ENV, order_id=OID, venue="A", from_state="filled", attempted="cancel",
                           offending_event_id=OID),
    RiskCheckPassed(envelope=ENV, order_id=OID),
    RiskCheckRejected(envelope=ENV, order_id=OID, rule="max_position", limit=D("2"), actual=D("2.5"),
                      detail="x"),
    KillSwitchEngaged(envelope=ENV, reason="r"),
    KillSwitchReleased(envelope=ENV, reason="r"),
    DrawdownBreached(envelope=ENV, peak_equity=D("1000"), equity=D("900"), drawdown_fraction=D("0.1"),
                     limit_fraction=D("0.1"), action="halt"),
    DrawdownHaltReleased(envelope=ENV, account="acc", reason="r", operator="ops", peak_equity=D("900")),
    LegExposureUnresolved(envelope=ENV, strategy_id="s1", account="acc", leg_group_id=OID, instrument="BTC-USDT",
                          venue="A", side=Side.BUY, quantity=D("0.5"), age_ns=5, attempts=3, reason="x"),
    VenueCircuitChanged(envelope=ENV, venue="A", state="open", failures=3, reason="HTTP 503"),
    EquitySampled(envelope=ENV, account="acc", quote_currency="USDT", equity=D("1000.5"), cash=D("900"),
                  realized_pnl=D("10"), unrealized_pnl=D("-2.5"), fees=D("1.25"),
                  valuations=(CurrencyValuation(currency="BTC", balance=D("0.01"), price=D("60000.5"),
                                                price_instrument="A:BTC-USDT", value=D("600.005")),
                              CurrencyValuation(currency="USD", balance=D("5"), price=None, price_instrument="",
                                                value=None)),
                  unaccounted_fills=("B:XBTUSD",)),
    SessionStarted(envelope=ENV, mode="backtest", config_hash="c", model_hash="m", code_version="v"),
    SessionEnded(envelope=ENV, input_events=10, derived_events=20, digest="d" * 64),
    InputsMerged(envelope=ENV, streams=("md.a.X", "md.b.X"), first_input=0, runs=((0, 3), (1, 1), (0, 2))),
    FilesImported(envelope=ENV, importer="import.binance_ws", files=(
        ImportedFile(name="btcusdt_20240808.gz", sha256="5" * 64, feed="binance-spot", records=41249, refused_rows=2,
                     streams=("md.binance-spot.BTCUSDT",)),)),
]  # fmt: skip


def test_samples_cover_every_event_type() -> None:
    assert sorted(e.type for e in SAMPLES) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_round_trip_is_exact(event: EventBase) -> None:
    data = encode(event)
    back = decode(data)
    assert back == event and type(back) is type(event)
    assert encode(back) == data  # canonical: bytes survive the trip
    assert decode(data.decode()) == event  # str input too


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_encoding_matches_the_published_schema(event: EventBase) -> None:
    jsonschema.validate(json.loads(encode(event)), json_schemas()[event.type])


def test_decimal_is_a_string_and_keeps_its_digits() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    assert raw["bid_price"] == "30000.1" and raw["ask_size"] == "0.25"
    assert list(raw)[:3] == ["type", "schema_version", "envelope"]  # declaration order


def _raw(event: EventBase, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(encode(event))
    raw.update(changes)
    return raw


def test_unknown_type_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="unknown event type 'market.nope'"):
        decode(json.dumps(_raw(SAMPLES[0], type="market.nope")))
    with pytest.raises(EventDecodeError, match="unknown event type None"):
        decode_mapping({"schema_version": 1})


def test_newer_version_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="schema_version 2 is newer than this code reads"):
        decode(json.dumps(_raw(SAMPLES[0], schema_version=2)))


def test_bad_version_and_not_json_and_not_an_object() -> None:
    with pytest.raises(EventDecodeError, match="positive integer"):
        decode(json.dumps(_raw(SAMPLES[0], schema_version=0)))
    with pytest.raises(EventDecodeError, match="not JSON"):
        decode(b"{nope")
    with pytest.raises(EventDecodeError, match="JSON object"):
        decode(b"[1, 2]")


def test_float_money_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="not float"):
        decode(json.dumps(_raw(SAMPLES[0], bid_price=30000.1)))
    with pytest.raises(ValidationError, match="not float"):
        QuoteTick(envelope=ENV, venue="A", instrument="X", bid_price=1.5, bid_size=D("1"),  # type: ignore[arg-type]
                  ask_price=D("2"), ask_size=D("1"))  # fmt: skip


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_money_is_refused(bad: str) -> None:
    with pytest.raises(EventDecodeError, match="finite"):
        decode(json.dumps(_raw(SAMPLES[0], bid_price=bad)))
    with pytest.raises(ValidationError, match="finite"):
        QuoteTick(envelope=ENV, venue="A", instrument="X", bid_price=D(bad), bid_size=D("1"), ask_price=D("2"),
                  ask_size=D("1"))  # fmt: skip


def test_invalid_fields_name_the_field() -> None:
    with pytest.raises(EventDecodeError, match="bid_size"):
        decode(json.dumps(_raw(SAMPLES[0], bid_size="lots")))


def test_missing_upcaster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QuoteTick, "SCHEMA_VERSION", 2)
    with pytest.raises(EventDecodeError, match="market.quote: no upcaster from schema_version 1"):
        decode(encode(SAMPLES[0]))


def test_upcaster_chain_reaches_the_current_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend QuoteTick is at v3: v1 named the venue `exchange`, v2 added nothing but a rename of a size field.
    monkeypatch.setattr(QuoteTick, "SCHEMA_VERSION", 3)

    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        out = dict(raw)
        out["venue"] = out.pop("exchange")
        return out

    def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
        out = dict(raw)
        out["bid_size"] = out.pop("bid_qty")
        return out

    monkeypatch.setitem(codec_module.UPCASTERS, ("market.quote", 1), v1_to_v2)
    monkeypatch.setitem(codec_module.UPCASTERS, ("market.quote", 2), v2_to_v3)
    old = _raw(SAMPLES[0])
    old["exchange"] = old.pop("venue")
    old["bid_qty"] = old.pop("bid_size")
    old["schema_version"] = 1
    event = decode(json.dumps(old))
    assert isinstance(event, QuoteTick)
    assert event.schema_version == 3 and event.venue == "A" and event.bid_size == D("1.5")


def test_digest_is_order_sensitive_and_counts() -> None:
    a, b = Digest(), Digest()
    a.add_events(SAMPLES[:2])
    b.add_events(reversed(SAMPLES[:2]))
    assert a.count == b.count == 2
    assert a.hexdigest() != b.hexdigest()


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("0.050", "0.05"), ("0.05", "0.05"), ("5E-2", "0.05"), ("0.5E-1", "0.05"),
        ("1E-7", "0.0000001"), ("1e-7", "0.0000001"), ("1E+2", "100"), ("100.00", "100"), ("100", "100"),
        ("30000.10", "30000.1"), ("-12.3400", "-12.34"), ("-0", "0"), ("-0.000", "0"), ("0E-8", "0"),
        ("0E+3", "0"), ("0.0000", "0"), ("-1E-30", "-0.000000000000000000000000000001"),
        ("1.23456789012345678901234567890123456789", "1.23456789012345678901234567890123456789"),
        ("123456789012345678901234567890123456789", "123456789012345678901234567890123456789"),
    ],
)  # fmt: skip
def test_every_amount_has_one_normal_form(written: str, canonical: str) -> None:
    """Plain notation, no exponent, no trailing zeros, integers without a point, any zero as "0", exact."""
    quote = QuoteTick(envelope=ENV, venue="A", instrument="X", bid_price=D(written), bid_size=written,
                      ask_price=D("2"), ask_size=D("1"))  # fmt: skip
    raw = json.loads(encode(quote))
    assert raw["bid_price"] == raw["bid_size"] == canonical
    assert D(canonical) == D(written)  # the same amount, never rounded
    # decoding any spelling and encoding again gives the normal form
    assert json.loads(encode(decode(json.dumps(_raw(quote, bid_price=written)))))["bid_price"] == canonical


def test_equal_amounts_are_equal_bytes_and_digests_whatever_the_source_wrote() -> None:
    def snapshot(a: str, b: str) -> BookSnapshot:
        return BookSnapshot(envelope=ENV, venue="A", instrument="X", last_update_id=1, bids=((D(a), D(b)),),
                            asks=())  # fmt: skip

    one, other = snapshot("61837.63000000", "0.05000"), snapshot("61837.63", "5E-2")
    assert encode(one) == encode(other)
    assert json.loads(encode(one))["bids"] == [["61837.63", "0.05"]]
    a, b = Digest(), Digest()
    a.add_events([one])
    b.add_events([other])
    assert a.hexdigest() == b.hexdigest()


def test_the_normal_form_ignores_the_callers_decimal_context() -> None:
    import decimal

    event = SAMPLES[0]
    expected = encode(event)
    with decimal.localcontext() as hostile:
        hostile.prec = 3
        hostile.traps[decimal.Inexact] = True
        hostile.traps[decimal.Rounded] = True
        assert encode(event) == expected
        assert encode(decode(expected)) == expected


def test_equity_sampled_v1_is_upcast_with_no_valuations() -> None:
    v1 = _raw(next(e for e in SAMPLES if isinstance(e, EquitySampled)), schema_version=1)
    del v1["valuations"], v1["unaccounted_fills"]
    event = decode(json.dumps(v1))
    assert isinstance(event, EquitySampled) and event.schema_version == 2
    assert event.valuations == () and event.unaccounted_fills == ()
