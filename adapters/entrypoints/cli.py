"""The `cse` command: the composition root of the embedded default (SQLite log, simulated venues)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from adapters.columnar.arrow import use_system_memory
from adapters.entrypoints import (
    api_commands,
    commands,
    compare_command,
    inspect_command,
    operator_cli,
    projection_commands,
    streaming_commands,
    trade_command,
)
from adapters.settings import Settings, SettingsError

REFERENCE_HELP = ("the reference path: every input through the kernel, no market core (CSE_CORE picks the core "
                  "otherwise); derives the same events")  # fmt: skip

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cse",
        description="CryptoSpreadEdge: event-sourced crypto trading; backtest, replay and run the same deciders.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="import the shipped sample, backtest the spread strategy, replay with --verify")
    p.add_argument("--home", type=Path, help="working directory (default: $CSE_HOME or ./var)")
    p.set_defaults(handler=commands.demo)

    p = sub.add_parser("import", help="import recorded market data files into a session of the event log")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--session", required=True, help="session id to create or extend")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "binance-ws", "lean-quotes", *commands.TABULAR_PRESETS],
        help="file format (auto: .gz = binance-ws captures, .zip = Lean quote bars)",
    )
    p.add_argument("--venue", help="venue name override")
    p.add_argument("--instrument", help="instrument override (tabular formats)")
    p.add_argument(
        "--instruments", action="append", type=Path, metavar="FILE",
        help="your own instrument specification file (TOML, layout of adapters/instruments/specs.toml); its"
        " entries extend and replace the shipped ones (repeatable)",
    )  # fmt: skip
    p.set_defaults(handler=commands.import_files)

    p = sub.add_parser("backtest", help="run a strategy over a recorded session; the run is a session of its own")
    p.add_argument("--session", required=True, help="input session id")
    p.add_argument("--strategy", default="spread", choices=["spread"])
    p.add_argument("--config", type=Path, required=True, help="TOML or JSON run configuration")
    p.add_argument("--id", dest="backtest_id", help="id of the backtest session (default: derived)")
    p.add_argument("--out", type=Path, help="report directory (default: $CSE_HOME/reports/<id>)")
    p.add_argument("--reference", action="store_true", help=REFERENCE_HELP)
    p.set_defaults(handler=commands.backtest)

    p = sub.add_parser("replay", help="re-run a session through the deciders and verify the derived events")
    p.add_argument("session", nargs="?")
    p.add_argument("--session", dest="session_opt", metavar="SESSION", help="the session (instead of SESSION)")
    p.add_argument("--verify", action="store_true", help="compare with the recorded events (exit 1 on divergence)")
    p.add_argument("--source", default="embedded", choices=["embedded", "kafka"], help="where the session is read from")
    p.add_argument("--prefix", help="Kafka topic prefix with --source kafka (default: $CSE_TOPIC_PREFIX or cse)")
    p.add_argument("--config", type=Path, help="with --source kafka: the run configuration of a `cse worker` run "
                                               "(SESSION = its target session): re-run the md topic with it")  # fmt: skip
    p.add_argument("--reference", action="store_true", help=REFERENCE_HELP)
    p.set_defaults(handler=streaming_commands.replay)

    p = sub.add_parser("export", help="export a session to Parquet")
    p.add_argument("session")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stream", action="append", help="only these streams (repeatable)")
    p.set_defaults(handler=commands.export)

    inspect_command.register(sub)
    compare_command.register(sub)

    p = sub.add_parser("migrate", help="move sessions' market data from SQLite records into columnar files (checked exact)")
    p.add_argument("sessions", nargs="+", metavar="SESSION")
    p.set_defaults(handler=commands.migrate)

    p = sub.add_parser("sessions", help="list the sessions of the event log with their streams and sizes")
    p.set_defaults(handler=commands.sessions)

    projection_commands.register(sub)

    p = sub.add_parser("schemas", help="write the JSON Schema of every event type")
    p.add_argument("--out", type=Path, default=Path("docs/events/schemas"))
    p.set_defaults(handler=commands.schemas)

    streaming_commands.register(sub)
    trade_command.register(sub)
    operator_cli.register(sub)
    api_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_system_memory()  # fresh buffers from the pooled allocators cost ~20x more on these machines
    try:  # the one place the configuration is read; every command gets it as `args.settings`
        args.settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = f"CSE_{'_'.join(str(part) for part in error['loc']).upper()}"
            shown = "" if Settings.is_secret(name) else f" (got {error.get('input')!r})"  # never a secret's value
            print(f"cse: configuration: {name}: {error['msg']}{shown}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"cse: configuration: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file in the secrets directory that cannot be read (its name is the variable's)
        print(f"cse: configuration: cannot read secret file {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(args)
    except commands.UserError as exc:
        print(f"cse {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
