"""`cse trade --mode paper|live --config CFG --session S (--symbol BTC/USDT | --market-session M)`: a live or
paper session.

Paper: the simulated venues (`adapters/simulated_venue.py`) over the market data as it arrives. Live: the
venues of the configuration on their exchanges through ccxt (`adapters/exchanges/live_venue.py`), with the
credentials of `adapters/exchanges/credentials.py` (environment / Docker secrets; never logged). Market data:
the exchanges' own, live (`--symbol`: the recorder runs in-process and also records session `S.md`), or a
recorded session played as the feed (`--market-session`). The same session id again resumes a session that
did not end (after a crash): its inputs are re-run, then the live venues reconcile with the exchanges
before anything new is sent. docs/trading-live.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from adapters.entrypoints.bootstrap import open_log, simulated_venues
from adapters.entrypoints.commands import UserError, code_version, read_run_config
from adapters.entrypoints.service import service
from adapters.exchanges.api_base import ApiBaseError, parse_api_bases
from adapters.exchanges.credentials import (
    CredentialsError,
    ExchangeCredentials,
    ccxt_options,
    credentials_for,
)
from adapters.exchanges.factory import EXCHANGES, create_exchange
from adapters.exchanges.feeds.base import SubscriptionRefused
from adapters.exchanges.live_venue import LiveVenue, venue_stream
from adapters.exchanges.record_log import RecordRefused
from adapters.exchanges.recorder import ExchangeRecorder, RecorderError
from adapters.exchanges.trading import LiveMarketFeed, SessionMarketFeed, trade
from adapters.observability.derived import DerivedEventMetrics
from adapters.settings import Settings
from application.backtest import session_instruments
from application.live_run import LiveRun, LiveSessionError
from application.operator_commands import COMMANDS_STREAM
from application.ports import Venue
from application.run_config import RunConfig
from application.session_run import MARKET_DATA_PREFIX, RunParameters
from domain.events import EventBase

EXCHANGE_OF = {spec.venue: exchange_id for exchange_id, spec in EXCHANGES.items()}
"""Venue name -> the ccxt exchange it trades on (each client loads its venue's markets only)."""
FAILURES = (LiveSessionError, CredentialsError, ApiBaseError, RecorderError, RecordRefused, SubscriptionRefused,
            ValueError)  # fmt: skip


def register(sub: Any) -> None:
    p = sub.add_parser(
        "trade", help="paper or live trading session: the strategy on market data as it arrives"
    )
    p.add_argument(
        "--mode",
        required=True,
        choices=["paper", "live"],
        help="paper: simulated venues; live: orders on the exchanges (credentials from the environment)",
    )
    p.add_argument("--config", type=Path, required=True, help="TOML or JSON run configuration")
    p.add_argument("--session", required=True, help="the session to write (an unfinished one is resumed)")
    feed = p.add_mutually_exclusive_group(required=True)
    feed.add_argument(
        "--symbol",
        help="trade on the exchanges' live market data of this ccxt symbol (e.g. "
        "BTC/USDT; the strategy's instrument on every configured venue), recorded in session S.md",
    )
    feed.add_argument(
        "--market-session",
        metavar="SESSION",
        help="play the market data of this recorded session as the feed",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --market-session: pace of the feed x the recorded pace (0: unpaced)",
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: SIGINT/SIGTERM)")
    p.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between order-status polls (live)"
    )
    p.add_argument(
        "--api-base",
        action="append",
        default=[],
        metavar="EXCHANGE=URL",
        help="send every request for EXCHANGE (ccxt id) to URL, paths kept: a testnet, a proxy, the "
        "local exchange (repeatable; also CSE_API_BASE)",
    )
    p.set_defaults(handler=trade_command)  # fmt: skip


def trade_command(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if args.speed < 0 or args.poll_interval <= 0 or (args.duration is not None and args.duration <= 0):
        raise UserError("--speed must be >= 0, --poll-interval and --duration > 0")
    with open_log(settings) as log:
        if args.market_session is not None and args.market_session not in log.sessions():
            raise UserError(f"no session {args.market_session!r} in {settings.event_log_path}")
        if args.mode == "live":  # refused before anything starts: one line naming what is missing
            try:
                venues = read_run_config(args.config).validate().venues
            except FAILURES as exc:
                raise UserError(str(exc)) from exc
            _require_credentials(settings, venues)
        with service("trader", settings, code_version()):  # /metrics + /health while it trades
            try:
                summary = asyncio.run(_run(settings, log, args))
            except FAILURES as exc:
                raise UserError(str(exc)) from exc
    print(json.dumps(summary, indent=2))
    return 0 if summary["inputs"] else 1


async def _run(settings: Settings, log: Any, args: argparse.Namespace) -> dict[str, Any]:
    live: list[LiveVenue] = []
    try:
        return await _session(settings, log, args, live)
    finally:
        for venue in live:
            await venue.close()


async def _session(
    settings: Settings, log: Any, args: argparse.Namespace, live: list[LiveVenue]
) -> dict[str, Any]:
    bases = parse_api_bases([*settings.api_base, *args.api_base])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    feed: AsyncIterator[tuple[str, EventBase]]
    if args.market_session is not None:
        recorded = SessionMarketFeed(log, args.market_session, args.session, time.time_ns, args.speed, stop)
        config = read_run_config(args.config).validate(
            session_instruments(log, args.market_session, recorded.streams)
        )
        feed, md_streams, recording = recorded.__aiter__(), recorded.streams, None
    else:
        config = read_run_config(args.config).validate()
        md_streams = tuple(
            f"{MARKET_DATA_PREFIX}{venue}.{config.strategy.instrument}" for venue in sorted(config.venues)
        )
        recording = _recording(log, args, config, bases)
        feed = recording[0].__aiter__()
    inbox: asyncio.Queue[tuple[str, EventBase]] = asyncio.Queue()
    if args.mode == "live":
        await _open_live_venues(settings, config.venues, args, inbox, log, bases, live)
        venues: Mapping[str, Venue] = {v.name: v for v in live}
        streams = (COMMANDS_STREAM, *md_streams, *(venue_stream(v.name) for v in live))
    else:
        venues, streams = simulated_venues(config), (COMMANDS_STREAM, *md_streams)
    run = LiveRun(
        log,
        args.session,
        RunParameters(args.session, streams, config),
        args.mode,
        venues,
        code_version(),
        observe=DerivedEventMetrics(),
    )
    resumed = 0
    if run.started:  # a session that did not end: re-run what it holds, then ask the exchanges what it missed
        for venue in live:
            venue.restoring = True
        resumed = run.resume()
        for venue in live:
            venue.restoring = False
            await venue.reconcile()
    else:
        run.start(time.time_ns())
    recorder = None if recording is None else asyncio.ensure_future(recording[0].run(recording[1], stop))
    fed = await trade(run, feed, inbox, live, args.poll_interval)
    if recorder is not None:
        await recorder  # its errors (an unknown symbol, a refused subscription) end the command
    ended = run.end(time.time_ns())
    return {"session": args.session, "mode": args.mode, "inputs": resumed + fed, "resumed_inputs": resumed,
            "derived": ended.derived_events, "digest": ended.digest, "venues": run.kernel.venue_counters()}  # fmt: skip


def _recording(log: Any, args: argparse.Namespace, config: RunConfig, bases: Mapping[str, str]
               ) -> tuple[LiveMarketFeed, list[ExchangeRecorder]]:  # fmt: skip
    """The in-process recorder of the configured venues' exchanges, feeding the session."""
    exchanges = [_exchange_of(venue) for venue in sorted(config.venues)]
    feed = LiveMarketFeed(log, f"{args.session}.md", args.session, code_version=code_version(),
                          config={"recorder": "ccxt", "exchanges": exchanges, "symbols": [args.symbol],
                                  "trading_session": args.session})  # fmt: skip
    recorders = [ExchangeRecorder(e, [args.symbol], feed.out, api_base=bases.get(e)) for e in exchanges]
    return feed, recorders


def _exchange_of(venue: str) -> str:
    exchange_id = EXCHANGE_OF.get(venue)
    if exchange_id is None:
        raise UserError(f"venue {venue!r} has no exchange (known: {', '.join(sorted(EXCHANGE_OF))})")
    return exchange_id


def _require_credentials(settings: Settings, venues: Iterable[str]) -> list[ExchangeCredentials]:
    """Each venue's exchange credentials, in order; a venue without them is refused, naming its exchange."""
    found = []
    for name in sorted(venues):
        credentials = credentials_for(settings, _exchange_of(name))
        if credentials is None:
            raise UserError(
                f"live trading on {name} needs {_exchange_of(name)} credentials (docs/trading-live.md)"
            )
        found.append(credentials)
    return found


async def _open_live_venues(settings: Settings, names: Mapping[str, Any], args: argparse.Namespace,
                            inbox: asyncio.Queue[tuple[str, EventBase]], log: Any, api_bases: Mapping[str, str],
                            venues: list[LiveVenue]) -> None:  # fmt: skip
    """One live venue per configured venue, into `venues` as each is made (so every one made gets closed)."""
    for name in sorted(names):
        exchange_id = _exchange_of(name)
        credentials = _require_credentials(settings, [name])[0]
        exchange = create_exchange(exchange_id, websocket=True, api_base=api_bases.get(exchange_id),
                                   credentials=ccxt_options(credentials))  # fmt: skip
        venues.append(LiveVenue(name, exchange, args.session, inbox.put_nowait, time.time_ns,
                                first_sequence=log.end_offset(args.session, venue_stream(name))))  # fmt: skip
        await exchange.load_markets()
