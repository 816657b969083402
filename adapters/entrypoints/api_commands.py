"""`cse serve` (the GraphQL API) and `cse api-key create`: the composition of the API's ports.

--target embedded: read models and time series in SQLite under $CSE_HOME, the SQLite event log, live events
by following that log. --target postgres: read models in $CSE_PG_DSN, time series in InfluxDB, live events
from the Kafka topics (a consumer in this process); `--log embedded` keeps the SQLite log and its feed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.api.app import create_app
from adapters.api.heap import freeze_startup_heap
from adapters.api.jobs import BacktestJobs
from adapters.api.keys import KeyStore, Role
from adapters.api.schema import schema
from adapters.api.services import ApiServices
from adapters.entrypoints.bootstrap import influx_config
from adapters.entrypoints.commands import UserError, _backtest, code_version, open_log, parse_config_source
from adapters.entrypoints.service import service
from adapters.log_feed import LogFeed
from adapters.observability.api import ApiMetricsMiddleware, watch_subscriptions
from adapters.observability.logs import logging_config
from adapters.settings import Settings
from application.live_feed import SessionFeed
from application.ports import EventLog
from application.read_queries import SeriesQueries
from projections.influx_http import InfluxHTTPClient
from projections.queries import SqlReadModels
from projections.schema import make_engine, migrate
from projections.series_queries import InfluxSeries, SqlSeries

UVICORN: dict[str, Any] = {"ws": "websockets-sansio", "ws_per_message_deflate": False}
"""websockets' sans-I/O implementation (wsproto's was about twice as slow per message), and no per-message
compression: each event's bytes are made once for all subscribers, and compressing them again per connection
(each keeps its own deflate state) cost more than the rest of the send. The messages are small JSON."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the GraphQL API, its subscriptions and the dashboard")
    p.add_argument("--target", choices=["embedded", "postgres"], default="embedded",
                   help="embedded: SQLite read models in $CSE_HOME; postgres: $CSE_PG_DSN + InfluxDB + Kafka")  # fmt: skip
    p.add_argument("--log", choices=["embedded", "kafka"], help="event log and live feed (default: embedded for"
                   " --target embedded, kafka for --target postgres)")  # fmt: skip
    p.add_argument("--host", help="listen address (default: $CSE_API_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $CSE_API_PORT or 8000)")
    p.add_argument("--dev", action="store_true", help="development: GraphiQL at /graphql")
    p.add_argument("--print-schema", action="store_true", help="print the GraphQL SDL and exit")
    p.set_defaults(handler=serve)

    p = sub.add_parser("api-key", help="manage API keys")
    keys = p.add_subparsers(dest="api_key_command", metavar="ACTION", required=True)
    c = keys.add_parser("create", help="create a key; it is printed once and stored hashed")
    c.add_argument("--role", required=True, choices=[r.name for r in Role])
    c.add_argument("--name", default="", help="a label shown as the operator of its commands")
    c.set_defaults(handler=create_key)


def create_key(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    key = KeyStore(settings.api_keys_path).create(Role[args.role], args.name)
    print(key)
    print(f"(role {args.role}; stored hashed in {settings.api_keys_path}; this is the only time it is shown)",
          file=__import__("sys").stderr)  # fmt: skip
    return 0


def sdl() -> str:
    return schema.as_str() + "\n"


def serve(args: argparse.Namespace) -> int:
    if args.print_schema:
        print(sdl(), end="")
        return 0
    import uvicorn

    settings: Settings = args.settings
    services = build_services(
        settings, args.target, args.log or ("kafka" if args.target == "postgres" else "embedded")
    )
    app = create_app(services, graphiql=args.dev, cors_origins=list(settings.api_cors_origins))
    app.add_middleware(ApiMetricsMiddleware)
    watch_subscriptions(app.state.hub)
    # a service like the worker and the projector: /metrics and /health on CSE_METRICS_PORT, JSON logs;
    # uvicorn stops gracefully on SIGTERM (open requests finish, websockets close)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler it found: make
    # that one a no-op so a stopped API exits 0 like the other services
    signal.signal(signal.SIGTERM, lambda *_: None)
    with service("api", settings, code_version()):
        freeze_startup_heap()
        uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port, **UVICORN,
                    log_config=logging_config("api", settings.log_level, settings.log_format == "json"))  # fmt: skip
    return 0


def read_engine(url: str, schema: str | None = None) -> AsyncEngine:
    """The API's engine: no ping before each statement (a read on a connection the server dropped is run
    again by the read models instead), a pool for the concurrent requests of one process and no overflow:
    past 10 statements in flight a request waits for a pooled connection, since one core gains nothing from
    more, and connections opened for a burst and closed after it (each a TLS negotiation) had turned a burst
    into a longer one."""
    return make_engine(url, schema=schema, pool_pre_ping=False, pool_size=10, max_overflow=0)


def build_services(settings: Settings, target: str, log_kind: str) -> ApiServices:
    if target == "postgres":
        url = settings.database_url
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}"
    try:
        asyncio.run(migrate(url))
    except Exception as exc:
        raise UserError(
            f"read models at {make_url(url).render_as_string(hide_password=True)}: {exc.__class__.__name__}"
            " (is the database up?)"
        ) from exc
    engine = read_engine(url)
    series: SeriesQueries
    if target == "postgres":
        config = influx_config(settings)
        series = InfluxSeries(InfluxHTTPClient(config.url), config)
    else:
        series = SqlSeries(engine)
    feed: SessionFeed
    open_event_log: Callable[[], contextlib.AbstractContextManager[EventLog]]
    if log_kind == "kafka":
        from streams.kafka_event_log import KafkaEventLog
        from streams.live_feed import KafkaFeed
        from streams.topics import Topics

        topics = Topics(settings.topic_prefix)
        feed = KafkaFeed(settings.kafka_bootstrap, topics)

        @contextlib.contextmanager
        def open_event_log() -> Iterator[EventLog]:
            with KafkaEventLog(settings.kafka_bootstrap, topics) as log:
                yield log
    else:
        feed = LogFeed(settings.event_log_path, catalog=settings.catalog_path)

        def open_event_log() -> contextlib.AbstractContextManager[EventLog]:
            return open_log(settings)

    return ApiServices(
        read_models=SqlReadModels(engine), series=series, open_log=open_event_log, feed=feed,
        keys=KeyStore(settings.api_keys_path), jobs=BacktestJobs(run_backtest_job), target=target,
        public={"read_models": make_url(url).render_as_string(hide_password=True), "log": log_kind},
    )  # fmt: skip


class _QueueProgress:
    """The progress bar of a backtest run in a worker process: counts go to the server, a few per second."""

    def __init__(self, q: Any, total: int, label: str) -> None:
        self.q, self.pending, self.total = q, 0, total
        q.put(("total", total))

    def __call__(self, count: int) -> None:
        self.pending += count
        if self.pending >= max(self.total // 100, 1):
            self.q.put(("progress", self.pending))
            self.pending = 0

    def close(self) -> float:
        self.q.put(("progress", self.pending))
        return 0.0


def run_backtest_job(session: str, config_text: str, run_id: str, q: Any) -> dict[str, Any]:
    """A backtest submitted through the API, in its worker process (module level: spawn imports it). The
    process's own entry point: it reads the settings, as `cse` does."""
    settings = Settings()
    config = parse_config_source(config_text, f"of run {run_id}")
    with open_log(settings) as log:
        summary = _backtest(
            settings,
            log,
            session,
            config,
            run_id,
            None,
            progress=lambda total, label: _QueueProgress(q, total, label),
        )  # type: ignore[arg-type,return-value]
    return {k: (v if isinstance(v, int | float | str | bool) or v is None else str(v)) for k, v in summary.items()
            if k != "legs"}  # fmt: skip
