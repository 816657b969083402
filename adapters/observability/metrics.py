"""Every Prometheus metric CryptoSpreadEdge exports: one catalogue, one definition per metric.

Names follow Prometheus conventions (`cse_` namespace, base units, `_total` counters, `_seconds` durations).
Labels are bounded: partition, venue, instrument, rule, account, projection, stream, route; never an order id,
event id or free text. Which worker or projector reported a series is Prometheus' own `instance` label.
Dashboards (`deploy/grafana/`) and alert rules (`deploy/prometheus/`) query only these names;
`tests/unit/test_deploy.py` checks that against the catalogue and `tests/integration/test_prometheus_scrape.py`
against a live scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# Latency of one input through the kernel (strategy, risk, execution, fills): 20 us .. 1 s.
KERNEL_BUCKETS = (
    0.00002,
    0.00005,
    0.0001,
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    1.0,
)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

BUILD_INFO = Info("cse_build", "Code version and service of this process")

# -- pipeline (worker) ---------------------------------------------------------------------------------------
WORKER_INPUTS = Counter("cse_worker_inputs_total", "Market-data inputs fed to the kernel", ["partition"])
WORKER_DERIVED = Counter(
    "cse_worker_derived_events_total", "Derived events published by the worker", ["partition"]
)
WORKER_DEAD_LETTERS = Counter(
    "cse_worker_dead_letters_total", "Undecodable inputs sent to the dead-letter topic"
)
WORKER_RECOVERIES = Counter(
    "cse_worker_recoveries_total",
    "Partition recoveries after a gap (restore = from a snapshot, rebuild = re-run from offset 0)",
    ["kind"],
)
CONSUMER_LAG = Gauge(
    "cse_consumer_lag_messages",
    "Messages of the partition not yet consumed (high watermark - position), by consumer group",
    ["group", "topic", "partition"],
)
KERNEL_LATENCY = Histogram(
    "cse_kernel_latency_seconds",
    "Wall time from a run of one session's consecutive inputs of a batch entering the kernel (through the market "
    "core) to their derived events being ready to publish",
    buckets=KERNEL_BUCKETS,
)

# -- trading (read off the derived-event stream, derived.py) -------------------------------------------------
ORDERS = Counter("cse_orders_total", "Order commands placed by strategies", ["venue", "instrument"])
FILLS = Counter(
    "cse_fills_total", "Fills (partial and full) reported by venues", ["venue", "instrument", "liquidity"]
)
VENUE_REJECTIONS = Counter("cse_venue_rejections_total", "Orders the venue rejected", ["venue"])
RISK_REJECTIONS = Counter("cse_risk_rejections_total", "Order commands refused by the risk gate", ["rule"])
KILL_SWITCH = Gauge("cse_kill_switch_engaged", "1 while the kill switch is engaged", ["account"])
KILL_SWITCH_TRIPS = Counter(
    "cse_kill_switch_engagements_total", "Times the kill switch was engaged", ["account"]
)
DRAWDOWN_HALTED = Gauge(
    "cse_drawdown_halted",
    "1 after a drawdown breach halted trading or restricted it to reduce-only",
    ["account"],
)
DRAWDOWN = Gauge(
    "cse_drawdown_ratio", "Drawdown from peak equity at the last breach (0.05 = 5 %)", ["account"]
)
VENUE_CIRCUIT_OPEN = Gauge(
    "cse_venue_circuit_open",
    "1 while the circuit breaker of a live venue is open or half-open (risk refuses new orders to it)",
    ["venue"],
)
EQUITY = Gauge("cse_equity", "Equity at the last sample, in the quote currency", ["account", "currency"])
PNL = Gauge("cse_pnl", "Profit and loss at the last equity sample", ["account", "currency", "kind"])
FEES = Gauge("cse_fees", "Fees paid so far at the last equity sample", ["account", "currency"])
EXPOSURE = Gauge(
    "cse_exposure",
    "Net market value of open positions at the last sample (equity - cash)",
    ["account", "currency"],
)
POSITION = Gauge(
    "cse_position_quantity", "Signed filled quantity (base units) per venue", ["venue", "instrument"]
)
SPREAD_EDGE = Gauge(
    "cse_spread_edge_bps",
    "Edge of the last spread opportunity detected, before (gross) and after (net) fees",
    ["instrument", "buy_venue", "sell_venue", "kind"],
)
SPREAD_OPPORTUNITIES = Counter(
    "cse_spread_opportunities_total",
    "Spread opportunities detected",
    ["instrument", "buy_venue", "sell_venue"],
)

# -- projections ---------------------------------------------------------------------------------------------
PROJECTION_LAG = Gauge(
    "cse_projection_lag_records",
    "Records not yet projected (log end offset - (last projected offset + 1)), summed over the sessions' "
    "streams of one kind (md, derived, session, ...)",
    ["projection", "stream"],
)
PROJECTION_DEAD_LETTERS = Counter(
    "cse_projection_dead_letters_total",
    "Log records a projection set aside because they could not be decoded (see projection_dead_letters)",
    ["projection"],
)
PROJECTION_RECORDS = Counter("cse_projection_records_total", "Log records projected", ["projection"])
PROJECTION_RETRIES = Counter(
    "cse_projection_retries_total", "Transient failures a projection backed off and retried", ["projection"]
)

# -- recorder (issue 14: defined here so dashboards and alerts have one name to query) ----------------------
RECORDER_MESSAGES = Counter("cse_recorder_messages_total", "Exchange messages recorded", ["venue"])
RECORDER_RECONNECTS = Counter("cse_recorder_reconnects_total", "Reconnections to an exchange feed", ["venue"])
RECORDER_SEQUENCE_GAPS = Counter(
    "cse_recorder_sequence_gaps_total",
    "Gaps in an exchange's update ids (book resync needed)",
    ["venue", "instrument"],
)

# -- API -----------------------------------------------------------------------------------------------------
API_LATENCY = Histogram(
    "cse_api_request_duration_seconds",
    "Duration of an API request, by route and status class",
    ["route", "status"],
    buckets=API_BUCKETS,
)
API_SUBSCRIPTIONS = Gauge("cse_api_subscriptions", "Open GraphQL subscriptions", ["subscription"])


def status_class(code: int) -> str:
    """`2xx`, `4xx`, ...: the status label stays bounded whatever the server answers."""
    return f"{code // 100}xx"
