"""Operations plumbing: trading metrics read off derived events (hand-computed values), the /metrics and
/health server, trace context continued from Kafka headers, JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from adapters.observability.derived import DerivedEventMetrics
from adapters.observability.http import Health, OpsServer
from adapters.observability.logs import JsonFormatter, configure_logging, log_context
from adapters.observability.tracing import Tracing
from domain.events import (
    Envelope,
    EquitySampled,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderFilled,
    OrderPartiallyFilled,
    RiskCheckRejected,
    VenueCircuitChanged,
)
from domain.values import Liquidity, Side

pytestmark = pytest.mark.unit

VENUE = "obs-test-venue"


def _env(n: int) -> Envelope:
    return Envelope(event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"obs-{n}"), session_id="obs", sequence=n,
                    event_time_ns=n, ingest_time_ns=n, source="test")  # fmt: skip


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _fill(n: int, cls: type, side: Side, quantity: str) -> object:
    return cls(envelope=_env(n), order_id=uuid.uuid5(uuid.NAMESPACE_OID, f"o{n}"), venue=VENUE,
               instrument="BTCUSDT", side=side, price=Decimal("50000"), quantity=Decimal(quantity),
               fee=Decimal("0"), fee_currency="USDT", liquidity=Liquidity.TAKER, venue_trade_id=f"t{n}",
               cumulative_quantity=Decimal(quantity), leaves_quantity=Decimal("0"))  # fmt: skip


def test_fills_rejections_kill_switch_and_exposure_from_derived_events() -> None:
    observe = DerivedEventMetrics(account="obs-account")
    fills_before = _value("cse_fills_total", venue=VENUE, instrument="BTCUSDT", liquidity="taker")
    rule_before = _value("cse_risk_rejections_total", rule="obs_max_notional")
    observe(_fill(1, OrderFilled, Side.BUY, "0.5"))
    observe(_fill(2, OrderPartiallyFilled, Side.SELL, "0.2"))
    observe(RiskCheckRejected(envelope=_env(3), order_id=uuid.uuid4(), rule="obs_max_notional",
                              limit=Decimal("1000"), actual=Decimal("1500")))  # fmt: skip
    assert _value("cse_fills_total", venue=VENUE, instrument="BTCUSDT", liquidity="taker") == fills_before + 2
    assert _value("cse_position_quantity", venue=VENUE, instrument="BTCUSDT") == pytest.approx(
        0.3
    )  # 0.5 - 0.2
    assert _value("cse_risk_rejections_total", rule="obs_max_notional") == rule_before + 1

    observe(KillSwitchEngaged(envelope=_env(4), reason="operator"))
    assert _value("cse_kill_switch_engaged", account="obs-account") == 1
    observe(KillSwitchReleased(envelope=_env(5), reason="operator"))
    assert _value("cse_kill_switch_engaged", account="obs-account") == 0

    # 10,000 USDT cash + 0.3 BTC marked at 50,100: equity 25,030, exposure = equity - cash = 15,030
    observe(EquitySampled(envelope=_env(6), account="obs-account", quote_currency="USDT", equity=Decimal("25030"),
                          cash=Decimal("10000"), realized_pnl=Decimal("20"), unrealized_pnl=Decimal("30"),
                          fees=Decimal("1.5")))  # fmt: skip
    assert _value("cse_exposure", account="obs-account", currency="USDT") == 15030
    assert _value("cse_pnl", account="obs-account", currency="USDT", kind="realized") == 20
    assert _value("cse_pnl", account="obs-account", currency="USDT", kind="unrealized") == 30


def test_venue_circuit_gauge_follows_the_breaker_through_half_open_to_closed() -> None:
    observe = DerivedEventMetrics()

    def changed(n: int, state: str) -> VenueCircuitChanged:
        return VenueCircuitChanged(envelope=_env(n), venue=VENUE, state=state, failures=3, reason="503")

    observe(changed(7, "open"))
    assert _value("cse_venue_circuit_open", venue=VENUE) == 1
    observe(changed(8, "half_open"))  # probing: orders still refused
    assert _value("cse_venue_circuit_open", venue=VENUE) == 1
    observe(changed(9, "closed"))
    assert _value("cse_venue_circuit_open", venue=VENUE) == 0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ops_server_serves_metrics_and_health() -> None:
    healthy = {"kafka": True}
    health = Health("test", {"kafka": lambda: healthy["kafka"]})
    with OpsServer(health, host="127.0.0.1", port=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, text = _get(f"{base}/metrics")
        assert status == 200
        assert "# TYPE cse_kernel_latency_seconds histogram" in text
        assert "# TYPE cse_projection_lag_records gauge" in text
        status, text = _get(f"{base}/health")
        assert (status, json.loads(text)["status"]) == (200, "ok")
        healthy["kafka"] = False
        status, text = _get(f"{base}/health")
        assert (status, json.loads(text)["checks"]) == (503, {"kafka": False})
        healthy["kafka"] = True
        health.stopping = True
        status, text = _get(f"{base}/health")
        assert (status, json.loads(text)["status"]) == (503, "stopping")
        assert _get(f"{base}/nothing")[0] == 404


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_tracing_off_does_nothing() -> None:
    tracing = Tracing.configure("test")
    assert not tracing.enabled
    with tracing.consume("hop", {"traceparent": f"00-{TRACE}-{PARENT}-01".encode()}) as span:
        assert span is None
        assert tracing.traceparent() is None


def test_consume_continues_the_trace_of_the_message_header() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.configure("test", exporter=exporter)
    with tracing.consume("worker.process", {"traceparent": f"00-{TRACE}-{PARENT}-01".encode()}):
        outgoing = tracing.traceparent()
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == TRACE
    assert f"{span.parent.span_id:016x}" == PARENT
    assert outgoing == f"00-{TRACE}-{span.context.span_id:016x}-01"
    tracing.shutdown()


def test_sampling_ratio_zero_keeps_no_trace() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.configure("test", sample_ratio=0.0, exporter=exporter)
    with tracing.consume("worker.process", {"traceparent": f"00-{TRACE}-{PARENT}-01".encode()}):
        assert tracing.traceparent() is None  # unsampled: the serializer writes the deterministic header
    assert exporter.get_finished_spans() == ()
    with pytest.raises(ValueError, match="sample ratio"):
        Tracing.configure("test", sample_ratio=1.5, exporter=exporter)


def test_json_log_lines_carry_trace_session_and_correlation_ids() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing.configure("test", exporter=exporter)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("worker"))
    logger = logging.getLogger("cse.test.obs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with tracing.consume("hop", {"traceparent": f"00-{TRACE}-{PARENT}-01".encode()}):
            with log_context(session_id="s-1", correlation_id="c-1"):
                logger.info("fed %d inputs", 3, extra={"partition": 2})
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "fed 3 inputs" and first["service"] == "worker" and first["partition"] == 2
    assert (first["trace_id"], first["session_id"], first["correlation_id"]) == (TRACE, "s-1", "c-1")
    assert "trace_id" not in second and "session_id" not in second
    tracing.shutdown()


def test_sampling_keeps_the_ratio_of_uuid_trace_ids_and_every_process_agrees() -> None:
    # trace ids are event UUIDs (uuid5): the SDK's ratio sampler, reading their low 64 bits, would keep none
    a = Tracing.configure("a", sample_ratio=0.1, exporter=InMemorySpanExporter())
    b = Tracing.configure("b", sample_ratio=0.1, exporter=InMemorySpanExporter())
    kept_a, kept_b = [], []
    for n in range(2000):
        trace = uuid.uuid5(uuid.NAMESPACE_OID, f"tick-{n}").hex
        header = {"traceparent": f"00-{trace}-{trace[:16]}-01".encode()}
        for tracing, kept in ((a, kept_a), (b, kept_b)):
            with tracing.consume("hop", header):
                kept.append(tracing.traceparent() is not None)
    assert kept_a == kept_b
    assert 150 < sum(kept_a) < 250  # 10 % of 2,000, within 3.5 standard deviations


def test_a_service_at_debug_level_never_logs_ccxt_requests_which_carry_keys_and_signatures() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("ccxt").level)
    try:
        configure_logging("trader", "debug", json_logs=True, stream=out)
        logging.getLogger("ccxt.async_support.base.exchange").debug(
            "POST http://127.0.0.1/api/v3/order, Request: %s", {"X-MBX-APIKEY": "planted-key"}
        )
        logging.getLogger("cse.test.debug_level").debug("our own debug line")
    finally:
        root.handlers[:], level, ccxt_level = saved
        root.setLevel(level)
        logging.getLogger("ccxt").setLevel(ccxt_level)
    assert "planted-key" not in out.getvalue()
    assert "our own debug line" in out.getvalue()  # the service itself still logs at debug
