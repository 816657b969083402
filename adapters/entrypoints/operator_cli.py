"""`cse command ...`: operator commands into a session's `commands` stream (embedded log or Kafka topic).

    cse command kill-switch engage|release --session S [--reason R]
    cse command drawdown release --session S [--reason R]
    cse command strategy start|stop ID --session S
    cse command limits set KEY=VALUE... --session S [--config FILE]

Common options: `--account NAME` (the command concerns that account only; default every account),
`--operator` (default: the OS user), `--at TIME` (the command's event time: ISO 8601, a naive time is UTC,
or integer nanoseconds since the epoch; default now), `--sink embedded|kafka`. Each prints the command's id.
All go through `application.operator_commands.append_operator_command`.

An account is free text in the events (a run's account comes from its configuration, which may be written
after the command), so any name is accepted; a name that no recorded run of the session uses is said on
stderr, since risk will ignore the command in those runs.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.entrypoints import commands
from adapters.settings import Settings
from application.backtest import session_instruments
from application.command_timing import refuse_untimed_after_recorded_data
from application.operator_commands import (
    CommandRefused,
    append_operator_command,
    check_limit_keys,
    latest_limits,
    updated_limits,
)
from application.ports import EventLog
from application.run_config import RunConfig
from application.session_run import market_data_streams
from domain.events import (
    EngageKillSwitch,
    Envelope,
    EventBase,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    SessionStarted,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
    decode,
)
from domain.values import RiskLimits

_FRACTION = re.compile(r"\.(\d{1,9})")


def register(sub: Any) -> None:
    p = sub.add_parser("command", help="operator commands (kill switch, drawdown halt release, strategy "
                                       "start/stop, risk limits) into a session")  # fmt: skip
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    k = kinds.add_parser("kill-switch", help="engage or release the kill switch")
    k.add_argument("action", choices=["engage", "release"])
    k.add_argument("--reason", default="", help="why (kept in the event)")
    _common(k)
    k.set_defaults(handler=kill_switch)

    k = kinds.add_parser("drawdown", help="release a latched drawdown halt")
    k.add_argument("action", choices=["release"])
    k.add_argument("--reason", default="", help="why (kept in the event)")
    _common(k)
    k.set_defaults(handler=drawdown)

    k = kinds.add_parser("strategy", help="start or stop a strategy by its strategy_id")
    k.add_argument("action", choices=["start", "stop"])
    k.add_argument("strategy_id", metavar="ID")
    _common(k)
    k.set_defaults(handler=strategy)

    k = kinds.add_parser("limits", help="change risk limits: set KEY=VALUE...")
    k.add_argument("action", choices=["set"])
    k.add_argument("assignments", nargs="+", metavar="KEY=VALUE",
                   help=f"limits to change (allowed keys: {', '.join(sorted(RiskLimits.model_fields))})")  # fmt: skip
    k.add_argument("--config", type=Path, help="run configuration whose [risk] limits the change starts from "
                                               "(when the session has no earlier limits command)")  # fmt: skip
    _common(k)
    k.set_defaults(handler=limits)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", required=True, help="session the command goes to")
    p.add_argument("--account", default=None, type=_account_name,
                   help="the account the command concerns (default: every account)")  # fmt: skip
    p.add_argument("--operator", default=None, help="who sends it (default: the OS user)")
    p.add_argument("--at", default=None, metavar="TIME",
                   help="event time: ISO 8601 (naive = UTC) or integer ns since the epoch (default: now)")  # fmt: skip
    p.add_argument("--sink", default="embedded", choices=["embedded", "kafka"],
                   help="embedded: the SQLite log ($CSE_EVENT_LOG); kafka: the commands topic")  # fmt: skip
    p.add_argument(
        "--prefix", help="Kafka topic prefix with --sink kafka (default: $CSE_TOPIC_PREFIX or cse)"
    )


def _account_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: name the account, or leave --account out for every account")
    return text


def parse_time_ns(text: str) -> int:
    """ISO 8601 (nanosecond fractions kept; naive = UTC) or integer nanoseconds since the epoch."""
    if text.isdigit():
        return int(text)
    fraction = _FRACTION.search(text)
    digits = fraction.group(1) if fraction else ""
    try:
        moment = datetime.fromisoformat(_FRACTION.sub("", text, count=1).replace("Z", "+00:00"))
    except ValueError:
        raise commands.UserError(f"--at {text!r} is not an ISO 8601 time nor integer nanoseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    time_ns = int(moment.timestamp()) * 1_000_000_000 + int(digits.ljust(9, "0") or 0)
    if time_ns < 0:
        raise commands.UserError(f"--at {text!r} is before 1970-01-01T00:00:00Z")
    return time_ns


def kill_switch(args: argparse.Namespace) -> int:
    kind = EngageKillSwitch if args.action == "engage" else ReleaseKillSwitch
    return _send(args, lambda env: kind(envelope=env, reason=args.reason, operator=_operator(args),
                                        account=args.account))  # fmt: skip


def drawdown(args: argparse.Namespace) -> int:
    return _send(args, lambda env: ReleaseDrawdownHalt(envelope=env, reason=args.reason, operator=_operator(args),
                                                       account=args.account))  # fmt: skip


def strategy(args: argparse.Namespace) -> int:
    kind = StartStrategy if args.action == "start" else StopStrategy
    return _send(args, lambda env: kind(envelope=env, strategy_id=args.strategy_id, operator=_operator(args),
                                        account=args.account))  # fmt: skip


def limits(args: argparse.Namespace) -> int:
    assignments: dict[str, str] = {}
    for item in args.assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise commands.UserError(f"{item!r} is not KEY=VALUE; allowed keys: "
                                     f"{', '.join(sorted(RiskLimits.model_fields))}")  # fmt: skip
        assignments[key.strip()] = value.strip()
    try:
        check_limit_keys(assignments)
    except ValueError as exc:
        raise commands.UserError(str(exc)) from None
    with _log(args) as log:
        known = args.session in log.sessions()
        base = latest_limits(log, args.session, args.account) if known else None
        # The configuration is validated whole, its venues' fees defaulting to the session's instruments.
        instruments = (
            session_instruments(log, args.session, market_data_streams(log, args.session)) if known else None
        )
    if base is None:
        if args.config is None:
            scope = f"for account {args.account!r}" if args.account else "for every account"
            raise commands.UserError(f"session {args.session!r} has no earlier limits command {scope}: pass "
                                     "--config FILE, the run configuration whose [risk] limits this changes")  # fmt: skip
        base = commands.read_run_config(args.config).validate(instruments).risk
    try:
        new = updated_limits(base, assignments)
    except ValueError as exc:
        raise commands.UserError(str(exc)) from None
    return _send(args, lambda env: UpdateRiskLimits(envelope=env, limits=new, operator=_operator(args),
                                                    account=args.account))  # fmt: skip


def _operator(args: argparse.Namespace) -> str:
    return str(args.operator or getpass.getuser())


@contextmanager
def _log(args: argparse.Namespace) -> Iterator[EventLog]:
    settings: Settings = args.settings
    if args.sink == "kafka":
        from confluent_kafka import KafkaException

        from streams.kafka_event_log import KafkaEventLog
        from streams.kafka_io import DeliveryError
        from streams.topics import Topics

        topics = Topics(args.prefix or settings.topic_prefix)
        try:
            with KafkaEventLog(settings.kafka_bootstrap, topics) as kafka:
                yield kafka
        except (KafkaException, DeliveryError, TimeoutError) as exc:
            raise commands.UserError(
                f"Kafka at {settings.kafka_bootstrap} ({topics.prefix}.*): {exc}"
            ) from None
    else:
        with commands.open_log(settings) as log:
            yield log


def _run_accounts(log: EventLog, session: str) -> set[str]:
    """The accounts of the recorded runs over `session` (their configurations, from each run's start)."""
    accounts: set[str] = set()
    for run in log.sessions():
        first = next(iter(log.read(run, "session", 0)), None)
        started = decode(first.record.payload) if first else None
        if isinstance(started, SessionStarted) and started.mode == "backtest":
            # read as plain JSON: an older run's configuration need not pass today's validation
            parameters = json.loads(started.parameters)
            if parameters.get("input_session") == session:
                accounts.add(
                    str(
                        parameters.get("config", {}).get("account", RunConfig.model_fields["account"].default)
                    )
                )
    return accounts


def _say_unused_account(log: EventLog, session: str, account: str) -> None:
    """Risk ignores a command for an account a run does not trade: say so when no recorded run uses it."""
    used = _run_accounts(log, session)
    if used and account not in used:
        print(f"note: no recorded run of session {session!r} uses account {account!r} (runs use: "
              f"{', '.join(sorted(used))}); the command is stored and applies only to runs of that account",
              file=sys.stderr)  # fmt: skip


def _send(args: argparse.Namespace, build: Any) -> int:
    # The wall clock, here only: the time an operator command enters the log.
    time_ns = parse_time_ns(args.at) if args.at else time.time_ns()
    with _log(args) as log:
        try:
            if not args.at:
                refuse_untimed_after_recorded_data(log, args.session, time_ns, "pass --at TIME")
            command: EventBase = append_operator_command(log, args.session, time_ns, build)
        except CommandRefused as exc:
            raise commands.UserError(str(exc)) from None
        if args.account is not None and args.sink == "embedded":  # on Kafka, listing runs scans every topic
            _say_unused_account(log, args.session, args.account)
    envelope: Envelope = command.envelope
    print(json.dumps({"command_id": str(envelope.event_id), "type": command.type, "session": args.session,
                      "account": args.account, "sequence": envelope.sequence,
                      "event_time_ns": envelope.event_time_ns, "sink": args.sink}))  # fmt: skip
    return 0
