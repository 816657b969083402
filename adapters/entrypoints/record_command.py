"""`cse record --exchanges ... --symbols ...`: the live recorder as a long-running service (/metrics,
/health, JSON logs, a clean stop on SIGTERM/SIGINT with everything received durable). docs/recording.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from adapters.entrypoints import commands
from adapters.entrypoints.bootstrap import open_log
from adapters.entrypoints.service import service
from adapters.exchanges.api_base import ApiBaseError, parse_api_bases
from adapters.exchanges.factory import UnknownExchange, exchange_spec
from adapters.exchanges.feeds.base import SubscriptionRefused
from adapters.exchanges.record_log import RecordLog, RecordRefused
from adapters.exchanges.recorder import ExchangeRecorder, RecorderError, record_exchanges
from adapters.settings import Settings

log = logging.getLogger(__name__)
STALE_AFTER_S = 30.0
"""/health fails when a connected exchange sent nothing for this long (ccxt's keep-alive reconnects sooner)."""


def _names(text: str | None, what: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise commands.UserError(f"--{what}: give at least one, comma-separated")
    return list(dict.fromkeys(names))


def record_live(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    exchanges = _names(args.exchanges, "exchanges")
    symbols = _names(args.symbols, "symbols")
    try:
        for exchange_id in exchanges:
            exchange_spec(exchange_id)
        bases = parse_api_bases([*settings.api_base, *args.api_base])
    except (UnknownExchange, ApiBaseError) as exc:
        raise commands.UserError(str(exc)) from exc
    unknown = sorted(set(bases) - set(exchanges))
    if unknown:
        raise commands.UserError(
            f"--api-base names {', '.join(unknown)}, which is not recorded (--exchanges)"
        )
    session = args.session or f"rec-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    config = {"recorder": "ccxt", "exchanges": exchanges, "symbols": symbols}
    if args.sink == "kafka":
        from streams.kafka_event_log import KafkaEventLog
        from streams.topics import Topics

        sink: Any = KafkaEventLog(settings.kafka_bootstrap, Topics(args.prefix or settings.topic_prefix))
    else:
        sink = open_log(settings)
    out = RecordLog(sink, session, code_version=commands.code_version(), config=config)
    recorders = [ExchangeRecorder(e, symbols, out, api_base=bases.get(e)) for e in exchanges]
    checks = {f"feed_{r.exchange_id}": _fresh(r) for r in recorders}
    try:
        with service("recorder", settings, commands.code_version(), checks) as svc:
            summary = asyncio.run(_run(svc, recorders, out, args.duration))
    except (RecorderError, RecordRefused, SubscriptionRefused) as exc:
        raise commands.UserError(str(exc)) from exc
    finally:
        sink.close()
    print(json.dumps({"session": summary.session_id, "records": summary.records, "messages": summary.messages,
                      "reconnects": summary.reconnects, "sequence_gaps": summary.gaps}))  # fmt: skip
    return 0 if sum(summary.messages.values()) > 0 else 1


def _fresh(recorder: ExchangeRecorder) -> Any:
    state = {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        if recorder.messages != state["count"]:
            state["count"], state["since"] = recorder.messages, time.monotonic()
        return recorder.connected and time.monotonic() - state["since"] < STALE_AFTER_S

    return check


async def _run(svc: Any, recorders: list[ExchangeRecorder], out: RecordLog, duration: float | None) -> Any:
    stop = svc.install_signal_handlers(asyncio.get_running_loop())
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, stop.set)
    return await record_exchanges(recorders, out, stop)
