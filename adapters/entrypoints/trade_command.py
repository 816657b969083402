"""`cse trade --mode paper|live --config CFG --session S --market-session M`: a live or paper session.

Paper: the simulated venues (`adapters/simulated_venue.py`) over the market data as it arrives. Live: the
venues of the configuration on their exchanges through ccxt (`adapters/exchanges/live_venue.py`), with the
credentials of `adapters/exchanges/credentials.py` (environment / Docker secrets; never logged). The same
session id again resumes a session that did not end (after a crash): its inputs are re-run, then the live
venues reconcile with the exchanges before anything new is sent. docs/trading-live.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.entrypoints.bootstrap import open_log, simulated_venues
from adapters.entrypoints.commands import UserError, code_version, read_run_config
from adapters.exchanges.api_base import ApiBaseError, parse_api_bases
from adapters.exchanges.credentials import CredentialsError, ccxt_options, credentials_for
from adapters.exchanges.factory import EXCHANGES, create_exchange
from adapters.exchanges.live_venue import LiveVenue, venue_stream
from adapters.exchanges.trading import SessionMarketFeed, trade
from adapters.settings import Settings
from application.backtest import session_instruments
from application.live_run import LiveRun, LiveSessionError
from application.ports import Venue
from application.session_run import RunParameters
from domain.events import EventBase

EXCHANGE_OF = {spec.venue: exchange_id for exchange_id, spec in EXCHANGES.items()}
"""Venue name -> the ccxt exchange it trades on (each client loads its venue's markets only)."""


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
    p.add_argument(
        "--market-session",
        required=True,
        metavar="SESSION",
        help="recorded session whose market data is played as the live feed",
    )
    p.add_argument(
        "--speed", type=float, default=1.0, help="pace of the feed x the recorded pace (0: unpaced)"
    )
    p.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between order-status polls (live)"
    )
    p.add_argument(
        "--api-base",
        action="append",
        default=[],
        metavar="EXCHANGE=URL",
        help="send every request for EXCHANGE (ccxt id) to URL, paths kept: a testnet, a proxy, the "
        "local exchange (repeatable)",
    )
    p.set_defaults(handler=trade_command)  # fmt: skip


def trade_command(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if args.speed < 0 or args.poll_interval <= 0:
        raise UserError("--speed must be >= 0 and --poll-interval > 0")
    with open_log(settings) as log:
        if args.market_session not in log.sessions():
            raise UserError(f"no session {args.market_session!r} in {settings.event_log_path}")
        try:
            summary = asyncio.run(_run(settings, log, args))
        except (LiveSessionError, CredentialsError, ApiBaseError, ValueError) as exc:
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
    feed = SessionMarketFeed(log, args.market_session, args.session, time.time_ns, args.speed)
    config = read_run_config(args.config).validate(
        session_instruments(log, args.market_session, feed.streams)
    )
    inbox: asyncio.Queue[tuple[str, EventBase]] = asyncio.Queue()
    if args.mode == "live":
        await _open_live_venues(settings, config.venues, args, inbox, log, live)
        venues: Mapping[str, Venue] = {v.name: v for v in live}
        streams = feed.streams + tuple(venue_stream(v.name) for v in live)
    else:
        venues, streams = simulated_venues(config), feed.streams
    parameters = RunParameters(args.session, streams, config)
    run = LiveRun(log, args.session, parameters, args.mode, venues, code_version())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
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
    fed = await trade(run, feed.__aiter__(), inbox, live, args.poll_interval, stop)
    ended = run.end(time.time_ns())
    return {"session": args.session, "mode": args.mode, "inputs": resumed + fed, "resumed_inputs": resumed,
            "derived": ended.derived_events, "digest": ended.digest, "venues": run.kernel.venue_counters()}  # fmt: skip


async def _open_live_venues(settings: Settings, names: Mapping[str, Any], args: argparse.Namespace,
                            inbox: asyncio.Queue[tuple[str, EventBase]], log: Any, venues: list[LiveVenue]) -> None:  # fmt: skip
    """One live venue per configured venue, into `venues` as each is made (so every one made gets closed)."""
    api_bases, session = parse_api_bases(args.api_base), args.session
    for name in sorted(names):
        exchange_id = EXCHANGE_OF.get(name)
        if exchange_id is None:
            raise UserError(
                f"venue {name!r} has no exchange to trade on (known: {', '.join(sorted(EXCHANGE_OF))})"
            )
        credentials = credentials_for(settings, exchange_id)
        if credentials is None:
            raise UserError(f"live trading on {name} needs {exchange_id} credentials (docs/trading-live.md)")
        exchange = create_exchange(exchange_id, websocket=True, api_base=api_bases.get(exchange_id),
                                   credentials=ccxt_options(credentials))  # fmt: skip
        venues.append(LiveVenue(name, exchange, session, inbox.put_nowait, time.time_ns,
                                first_sequence=log.end_offset(session, venue_stream(name))))  # fmt: skip
        await exchange.load_markets()
