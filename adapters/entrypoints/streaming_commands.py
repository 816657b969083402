"""The Kafka subcommands of `cse`: `topics create|list`, `record`, `worker`, and `replay --source kafka`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adapters.entrypoints import commands
from adapters.entrypoints.progress import ProgressBar
from adapters.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("topics", help="Kafka topics: create them (idempotent) or list them with their keys")
    p.add_argument("action", choices=["create", "list"])
    p.add_argument("--prefix", help="topic name prefix (default: $CSE_TOPIC_PREFIX or cse)")
    p.add_argument(
        "--partitions", type=int, help="partitions per topic (default: $CSE_KAFKA_PARTITIONS or 6)"
    )
    p.add_argument(
        "--replication", type=int, help="replication factor (default: $CSE_KAFKA_REPLICATION or 1)"
    )
    p.add_argument("--retention-ms", type=int, help="retention of event topics (default: -1, forever)")
    p.set_defaults(handler=topics)

    p = sub.add_parser("record", help="record live market data from exchanges (--exchanges), or publish a "
                       "session of the embedded log to the Kafka topics (--from-file)")  # fmt: skip
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-file", dest="from_file", metavar="SESSION",
                        help="session of the SQLite log ($CSE_EVENT_LOG) to publish")  # fmt: skip
    source.add_argument("--exchanges", help="record live: comma-separated ccxt ids (binance, binanceusdm, "
                        "binancecoinm, bybit, kraken, coinbase; docs/recording.md)")  # fmt: skip
    p.add_argument("--symbols", help="with --exchanges: comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT")
    p.add_argument("--session", help="with --exchanges: session to record into (default: rec-<UTC time>)")
    p.add_argument("--sink", choices=["embedded", "kafka"], default="embedded",
                   help="with --exchanges: the embedded SQLite log ($CSE_EVENT_LOG) or the Kafka topics")  # fmt: skip
    p.add_argument("--api-base", action="append", default=[], metavar="EXCHANGE=URL",
                   help="send every REST and websocket call of EXCHANGE to URL's host, paths kept (repeatable; "
                   "also $CSE_API_BASE)")  # fmt: skip
    p.add_argument("--duration", type=float, help="with --exchanges: stop after this many seconds")
    p.add_argument("--pace", type=float, help="publish market data at the recorded pace times this factor")
    p.add_argument("--inputs-only", action="store_true", help="only the market data (for `cse worker`)")
    p.add_argument("--prefix", help="topic name prefix (default: $CSE_TOPIC_PREFIX or cse)")
    p.add_argument("--account", default="default", help="Kafka key of account-keyed topics")
    p.set_defaults(handler=record)

    p = sub.add_parser("worker", help="run the Faust worker: the kernel on the market-data topic")
    p.add_argument("--config", type=Path, required=True, help="TOML or JSON run configuration")
    p.add_argument("--prefix", help="topic name prefix (default: $CSE_TOPIC_PREFIX or cse)")
    p.add_argument("--app-id", help="Faust app id = consumer group (default: <prefix>-kernel)")
    p.add_argument("--loglevel", default="info")
    p.set_defaults(handler=worker)


def _topics(settings: Settings, prefix: str | None) -> Any:
    from streams.topics import Topics

    return Topics(prefix or settings.topic_prefix)


def topics(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from adapters.entrypoints.bootstrap import topic_config
    from streams.topics import create_topics, describe

    settings: Settings = args.settings
    config = topic_config(settings, prefix=args.prefix, partitions=args.partitions, replication=args.replication,
                          retention_ms=args.retention_ms)  # fmt: skip
    if args.action == "list":
        for name, spec in describe(config.prefix):
            print(f"{name}\tkey={spec.key}\t{', '.join(spec.carries)}")
        return 0
    try:
        result = create_topics(settings.kafka_bootstrap, config)
    except KafkaException as exc:
        raise commands.UserError(f"Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    for name, state in result.items():
        print(f"{state:8} {name}")
    return 0


def record(args: argparse.Namespace) -> int:
    if args.exchanges:
        from adapters.entrypoints.record_command import record_live

        return record_live(args)
    if args.symbols or args.session:
        raise commands.UserError("--symbols and --session go with --exchanges (recording live)")
    args.session = args.from_file
    from adapters.observability.tracing import Tracing
    from streams.kafka_event_log import KafkaEventLog
    from streams.record import record_session

    settings: Settings = args.settings
    tracing = Tracing.configure("record", settings.otlp_endpoint, settings.trace_sample_ratio)
    with commands.open_log(settings) as log:
        if args.session not in log.sessions():
            raise commands.UserError(f"no session {args.session!r} in {settings.event_log_path}")
        total = sum(log.end_offset(args.session, s) for s in log.streams(args.session))
        bar = ProgressBar(total, f"record {args.session}")
        kafka = KafkaEventLog(settings.kafka_bootstrap, _topics(settings, args.prefix), account=args.account, tracer=tracing)
        result = record_session(log, kafka, args.session, pace=args.pace, inputs_only=args.inputs_only,
                                progress=bar)  # fmt: skip
        bar.close()
    tracing.shutdown()  # exports the spans still buffered
    print(json.dumps({"session": result.session_id, "inputs": result.inputs, "others": result.others,
                      "seconds": round(result.seconds, 3), "messages_per_second": round(result.rate)}))  # fmt: skip
    return 0


def worker(args: argparse.Namespace) -> int:
    """`cse worker`: the Faust worker as a service (/metrics, /health, JSON logs, traces); Faust stops it
    cleanly on SIGTERM (offsets committed, the group left)."""
    import faust

    from adapters.entrypoints.bootstrap import worker_app
    from adapters.entrypoints.service import service
    from adapters.observability.logs import logging_config
    from adapters.observability.worker import WorkerInstruments

    settings: Settings = args.settings
    config = commands.load_run_config(args.config)
    topics_ = _topics(settings, args.prefix)
    app_id = args.app_id or f"{topics_.prefix}-kernel"
    agents_alive = {"agents": lambda: not app.crashed and not any(a.crashed for a in app.agents.values())}
    with service("worker", settings, commands.code_version(), agents_alive) as svc:
        instruments = WorkerInstruments(svc.tracing, app_id, config.account)
        app, _ = worker_app(settings, config, topics_, app_id, commands.code_version(), instruments,
                            commands._core(settings, reference=False))  # fmt: skip
        json_logs = settings.log_format == "json"
        worker_ = faust.Worker(app, loglevel=args.loglevel,
                               logging_config=logging_config("worker", settings.log_level, json_logs))  # fmt: skip
        try:
            worker_.execute_from_commandline()  # runs until SIGINT/SIGTERM
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def replay(args: argparse.Namespace) -> int:
    """`cse replay`: embedded (default) or `--source kafka`; the session positionally or with --session."""
    session = args.session_opt or args.session
    if not session:
        raise commands.UserError("which session? pass SESSION or --session S")
    args.session = session
    if getattr(args, "config", None) is not None and args.source != "kafka":
        raise commands.UserError("--config replays a `cse worker` run: use it with --source kafka")
    if args.source != "kafka":
        return commands.replay(args)
    from streams.kafka_event_log import KafkaEventLog
    from streams.replay import replay_from_kafka, verify_worker_run

    kafka = KafkaEventLog(args.settings.kafka_bootstrap, _topics(args.settings, getattr(args, "prefix", None)))
    core = commands._core(args.settings, args.reference)
    try:
        if getattr(args, "config", None) is not None:
            config = commands.load_run_config(args.config)
            report = verify_worker_run(kafka, session, config, commands.simulated_venues, core)
        else:
            report = replay_from_kafka(kafka, session, commands.simulated_venues, commands.code_version(), core=core)
    except ValueError as exc:
        raise commands.UserError(str(exc)) from exc
    commands._print_replay(report)
    print("  source           kafka", file=sys.stdout)
    return 0 if report.ok or not args.verify else 1
