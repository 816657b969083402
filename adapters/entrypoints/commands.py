"""Handlers of the `cse` subcommands: they wire the adapters into the application use cases."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

from adapters.columnar.migrate import migrate_session
from adapters.entrypoints.bootstrap import CoreUnavailable, market_core, open_log, simulated_venues
from adapters.entrypoints.progress import Progress, ProgressBar
from adapters.html_report import write_report
from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.common import ImportRefused, ImportReport
from adapters.importers.lean import import_lean_quotes
from adapters.importers.tabular import PRESETS, import_preset
from adapters.instruments.catalog import (
    InstrumentCatalog,
    SpecificationFileError,
    UnknownInstrument,
    load_catalog,
)
from adapters.parquet_export import export_session
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest, session_instruments
from application.fast_run import CoreFactory
from application.replay import ReplayReport, replay_session
from application.run_config import InstrumentSpecs, RunConfig
from application.session_run import RunParameters, input_streams
from domain.events import json_schemas

TABULAR_PRESETS = tuple(sorted(PRESETS))
REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "deploy" / "samples"


class UserError(Exception):
    """A mistake the user can fix (missing session, bad config): printed without a traceback."""


@cache
def code_version() -> str:
    """Package version plus the git commit when run from a checkout, recorded in every session."""
    try:
        base = version("cryptospreadedge")
    except PackageNotFoundError:
        base = "0+unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return base
    return f"{base}+g{commit}"


@dataclass(frozen=True)
class ConfigSource:
    """A run configuration read and parsed, validated when the run starts: a venue's fees default to the
    input session's instrument specifications, known only then."""

    raw: dict[str, Any]
    where: str

    def validate(self, instruments: InstrumentSpecs | None = None) -> RunConfig:
        try:
            return RunConfig.model_validate(self.raw, context={"instruments": instruments})
        except ValueError as exc:
            raise UserError(f"config {self.where}: {exc}") from exc


def read_run_config(path: Path) -> ConfigSource:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"config {path}: {exc}") from exc
    return parse_config_source(text, str(path), json_format=path.suffix == ".json")


def parse_config_source(text: str, where: str, *, json_format: bool = False) -> ConfigSource:
    try:
        raw = json.loads(text) if json_format else tomllib.loads(text)
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError both are
        raise UserError(f"config {where}: {exc}") from exc
    if not isinstance(raw, dict):
        raise UserError(f"config {where}: a run configuration is a table, not {type(raw).__name__}")
    return ConfigSource(raw, where)


def load_run_config(path: Path) -> RunConfig:
    """A configuration that needs no session: every venue sets its fees (a streaming worker, a test)."""
    return read_run_config(path).validate()


def import_files(args: argparse.Namespace) -> int:
    report = _import(args.settings, args.paths, args.session, args.format, args.venue, args.instrument,
                     args.instruments or [])  # fmt: skip
    return 0 if report.records else 1  # an import that stores nothing is refused before this


def _import(
    settings: Settings, paths: list[Path], session: str, fmt: str, venue: str | None, instrument: str | None,
    spec_files: list[Path] | None = None,
) -> ImportReport:  # fmt: skip
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"no such file: {', '.join(missing)}")
    try:
        return _import_with(settings, paths, session, fmt, venue, instrument, load_catalog(spec_files or []))
    except (SpecificationFileError, UnknownInstrument) as exc:  # a file-level refusal, not a traceback
        raise UserError(str(exc)) from exc


def _import_with(
    settings: Settings, paths: list[Path], session: str, fmt: str, venue: str | None, instrument: str | None,
    catalog: InstrumentCatalog,
) -> ImportReport:  # fmt: skip
    if fmt == "auto":
        suffixes = {p.suffix for p in paths}
        if suffixes == {".gz"}:
            fmt = "binance-ws"
        elif suffixes == {".zip"}:
            fmt = "lean-quotes"
        else:
            raise UserError(f"cannot tell the format of {sorted(suffixes)}; pass --format")
    if instrument is not None and fmt in ("binance-ws", "lean-quotes"):
        raise UserError(f"--instrument applies to tabular formats; {fmt} files name their instrument")
    if venue is not None and fmt == "lean-quotes":
        raise UserError("--venue does not apply to lean-quotes: the venue is the path's <exchange>-<market>")
    try:
        with open_log(settings) as log:
            if fmt == "binance-ws":
                return import_binance_ws(log, session, paths, code_version=code_version, venue=venue,
                                         instruments=catalog)  # fmt: skip
            if fmt == "lean-quotes":
                return import_lean_quotes(log, session, paths, code_version=code_version, instruments=catalog)
            return import_preset(log, session, paths, fmt, code_version=code_version, venue=venue,
                                 instrument=instrument, instruments=catalog)  # fmt: skip
    except ImportRefused as exc:
        raise UserError(f"{exc}; nothing was imported into session {session!r}") from exc
    except sqlite3.OperationalError as exc:
        raise UserError(f"event log {settings.event_log_path}: {exc}; nothing was imported") from exc


def backtest(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    config = read_run_config(args.config)
    with open_log(settings) as log:
        summary = _backtest(settings, log, args.session, config, args.backtest_id, args.out,
                            reference=args.reference)  # fmt: skip
    print(json.dumps({k: v for k, v in summary.items() if k != "legs"}, indent=2))
    print_fees(summary, sys.stderr)
    print_inventory(summary, sys.stderr)  # stdout stays one JSON document
    return 0


def print_fees(summary: Mapping[str, Any], out: TextIO) -> None:
    """The rates each venue charged, where they came from, and what the strategy priced its edge with."""
    for venue, rates in summary["fee_rates"].items():
        print(f"   {venue} charged maker {rates['maker_bps']} / taker {rates['taker_bps']} bps "
              f"({rates['source']})", file=out)  # fmt: skip
    print(f"   the strategy priced its edge with {summary['strategy_prices_edge_with']}", file=out)


def print_inventory(summary: Mapping[str, Any], out: TextIO) -> None:
    """The end inventory and unhedged exposure as lines a trader reads first."""
    inventory = summary["end_inventory"]
    print("End inventory" + ("" if inventory else ": flat"), file=out)
    for row in inventory:
        print(f"  {row['venue']:16} {row['instrument']:12} {row['quantity']:>14} {row['asset']:6} "
              f"at {row['mark']} = {row['notional']}", file=out)  # fmt: skip
    for asset, values in summary["unhedged_exposure"].items():
        print(f"  unhedged {asset}: net {values['net_quantity']} (gross {values['gross_quantity']}), "
              f"net value {values['net_notional']}", file=out)  # fmt: skip


def _backtest(
    settings: Settings, log: SqliteEventLog, session: str, source: ConfigSource, backtest_id: str | None,
    out: Path | None, progress: Callable[[int, str], Progress] = ProgressBar, reference: bool = False,
) -> dict[str, object]:  # fmt: skip
    if session not in log.sessions():
        raise UserError(f"no session {session!r} in {settings.event_log_path}; import one first")
    streams = input_streams(log, session)
    # Fees resolve here, from the session's InstrumentDefined events, and are recorded with the run's
    # parameters: a replay charges what was resolved now.
    config = source.validate(session_instruments(log, session, streams))
    parameters = RunParameters(session, streams, config)
    session_id = backtest_id or f"{session}.bt-{parameters.config_hash}"
    total = sum(log.end_offset(session, s) for s in parameters.streams)
    core = _core(settings, reference)
    bar = progress(total, f"backtest {session_id}")
    try:
        result = run_backtest(log, parameters, session_id, simulated_venues, code_version(), bar, core)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    seconds = bar.close()
    result.summary["seconds"] = round(seconds, 3)
    result.summary["events_per_second"] = round((result.inputs + result.derived) / max(seconds, 1e-9))
    report_dir = out or settings.reports_dir / session_id
    trips = [trip.as_dict() for trip in result.metrics.round_trips.trips]
    html = write_report(report_dir, f"Backtest {session_id}", result.summary, result.metrics.equity,
                        result.metrics.spreads, trips)  # fmt: skip
    result.summary["report"] = str(html)
    return result.summary


def replay(args: argparse.Namespace) -> int:
    with open_log(args.settings) as log:
        report = _replay(args.settings, log, args.session, reference=args.reference)
    _print_replay(report)
    return 0 if report.ok or not args.verify else 1


def _core(settings: Settings, reference: bool) -> CoreFactory | None:
    try:
        return market_core(settings, reference)
    except CoreUnavailable as exc:
        raise UserError(str(exc)) from exc


def _replay(settings: Settings, log: SqliteEventLog, session: str, reference: bool = False) -> ReplayReport:
    total = sum(log.end_offset(session, s) for s in log.streams(session))
    core = _core(settings, reference)
    bar = ProgressBar(total, f"replay {session}")
    try:
        report = replay_session(log, session, simulated_venues, code_version(), bar, core)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    bar.close()
    return report


def _print_replay(report: ReplayReport) -> None:
    verdict = "identical" if report.ok else f"{report.divergences} divergence(s)"
    print(f"replay {report.session_id} ({report.mode}): {report.events_checked} events checked: {verdict}")
    print(f"  recorded digest  {report.recorded_digest}")
    print(f"  replayed digest  {report.replayed_digest}")
    for note in report.notes:
        print(f"  note: {note}")
    if report.first is not None:
        print(f"  first divergence at derived event #{report.first.index}:")
        print(f"    recorded: {report.first.recorded}")
        print(f"    replayed: {report.first.replayed}")


def export(args: argparse.Namespace) -> int:
    with open_log(args.settings) as log:
        if args.session not in log.sessions():
            raise UserError(f"no session {args.session!r}")
        rows = export_session(log, args.session, args.out, streams=args.stream)
    print(f"exported {rows} events of {args.session} to {args.out}")
    return 0


def sessions(args: argparse.Namespace) -> int:
    with open_log(args.settings) as log:
        for session in log.sessions():
            streams = log.streams(session)
            total = sum(log.end_offset(session, s) for s in streams)
            market = log.market_data(session)
            where = f"\tmarket data {log.catalog.path(market.sha256) if log.catalog else market.sha256}" if market else ""
            print(f"{session}\t{total} events\t{', '.join(streams)}{where}")
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Each session's SQLite market-data records into a columnar file; any session refused: exit 2."""
    with open_log(args.settings) as log:
        for session in args.sessions:
            if session not in log.sessions():
                raise UserError(f"no session {session!r} in {args.settings.event_log_path}")
            try:
                done = migrate_session(log, session)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
            print(f"migrated {session}: {done.records} records of {', '.join(done.streams)} -> {done.rows} rows in"
                  f" {log.catalog.path(done.sha256) if log.catalog else done.sha256}; every event checked exact")  # fmt: skip
    return 0


def schemas(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (args.out / f"{name}.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(json_schemas())} schemas to {args.out}")
    return 0


def demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default: import, backtest, replay --verify, summary."""
    home = args.home or args.settings.home / "demo"
    if home.exists():
        shutil.rmtree(home)  # the demo owns this directory: each run starts from an empty log
    settings = args.settings.model_copy(update={"home": home})
    captures = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
    print(
        "== 1/3 import: two minutes of Binance BTCUSDT spot and USD-M websocket captures (MIT, hftbacktest)"
    )
    report = _import(settings, captures, "binance-btcusdt-20240808", "binance-ws", None, None)
    if report.bad_row_count:
        print(f"   {report.bad_row_count} rows refused, reported above by reason; counted, not hidden")
    print("== 2/3 backtest: cross-venue spread strategy, spot vs USD-M perpetual as two venues "
          f"({settings.core} market core)")
    with open_log(settings) as log:
        summary = _backtest(settings, log, "binance-btcusdt-20240808", read_run_config(SAMPLES / "spread-demo.toml"),
                            None, None)  # fmt: skip
        print_fees(summary, sys.stdout)
        # The replay takes the reference path (every input through the kernel, no core): equal digests show
        # the core derived exactly what the deciders derive on every input.
        print("== 3/3 replay --verify --reference of the backtest session (every input through the kernel)")
        replayed = _replay(settings, log, str(summary["session_id"]), reference=True)
    _print_replay(replayed)
    print()
    print("Summary")
    for key in ("session_id", "input_events", "derived_events", "opportunities", "pnl", "fees", "trades",
                "hit_ratio", "round_trip_pnl", "max_drawdown_fraction", "performance_horizon", "fill_ratio",
                "risk_rejections", "risk_rejections_by_rule", "events_per_second"):  # fmt: skip
        print(f"  {key:22} {'n/a' if summary[key] is None else summary[key]}")
    print_inventory(summary, sys.stdout)
    print(f"  {'backtest digest':22} {summary['digest']}")
    print(f"  {'replay digest':22} {replayed.replayed_digest}  (reference path)")
    print(f"  {'digests equal':22} {replayed.ok and replayed.replayed_digest == summary['digest']}")
    print(f"  {'report':22} {summary['report']}")
    print()
    print("Dashboard of this session (live replay in the browser):")
    print(f"  CSE_HOME={home} cse project && CSE_HOME={home} cse api-key create --role admin")
    print(f"  CSE_HOME={home} cse serve   # then open, with the key printed above:")
    print(
        f"  http://127.0.0.1:{settings.api_port}/dashboard?session={summary['session_id']}&speed=20#key=<key>"
    )
    return 0 if replayed.ok and replayed.replayed_digest == summary["digest"] else 1
