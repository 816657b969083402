"""`cse compare LIVE_OR_PAPER_SESSION BACKTEST_SESSION [--tolerance-ms MS] [--json]`: the orders of a live or
paper run lined up with a backtest's, and where the PnL difference comes from (`application/compare_runs.py`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from adapters.entrypoints.commands import UserError, open_log
from adapters.entrypoints.inspect_command import _utc as utc
from adapters.settings import Settings
from application.compare_runs import DEFAULT_TOLERANCE_NS, NothingToCompare, compare_sessions
from application.run_orders import RunUnavailable

PART_LABELS = {
    "orders_only_in_live": "orders only in live",
    "orders_only_in_backtest": "orders only in the backtest",
    "quantity": "filled quantity (partial fills, filled in one run only)",
    "decision_price": "decision price (the market each order was placed into)",
    "slippage": "slippage (fill price vs decision price)",
    "fees": "fees",
    "total": "total",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="line up the orders and fills of a live or paper session with a backtest over the same market data; "
        "per order and in total, where the PnL difference comes from",
    )
    p.add_argument("live", metavar="LIVE_OR_PAPER_SESSION")
    p.add_argument("backtest", metavar="BACKTEST_SESSION")
    p.add_argument(
        "--tolerance-ms", type=float, default=DEFAULT_TOLERANCE_NS / 1e6,
        help="how far apart two orders' placement times may be to pair them (default: %(default)g ms)",
    )  # fmt: skip
    p.add_argument("--all", action="store_true", help="text: list every order, also pairs that did the same")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (every order)")
    p.set_defaults(handler=compare)


def compare(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    if args.tolerance_ms < 0:
        raise UserError(f"--tolerance-ms must not be negative, got {args.tolerance_ms:g}")
    with open_log(settings) as log:
        try:
            comparison = compare_sessions(log, args.live, args.backtest, round(args.tolerance_ms * 1e6))
        except NothingToCompare as exc:
            raise UserError(str(exc)) from exc
        except RunUnavailable as exc:
            raise UserError(f"{exc} ({settings.event_log_path})") from exc
    report = comparison.as_dict()
    print(json.dumps(report, indent=2) if args.json else "\n".join(text(report, args.all)))
    return 0


def differs(order: dict[str, Any]) -> bool:
    """In one run only, or a pair that filled, priced, paid or earned differently (latency alone is not)."""
    if order["live"] is None or order["backtest"] is None:
        return True
    keys = ("filled_quantity_difference", "price_difference", "slippage_difference", "fee_difference")
    return any(order[k] not in (None, "0") for k in keys) or order["pnl_difference"]["total"] != "0"


def text(report: dict[str, Any], every_order: bool = False) -> list[str]:
    live, backtest, matching = report["live"], report["backtest"], report["matching"]
    lines = [
        f"live     {live['session']} ({live['mode']}, market data of {live['market_data_of']})",
        f"backtest {backtest['session']} ({backtest['mode']}, market data of {backtest['market_data_of']})",
        f"matching: {matching['rule']} (tolerance {matching['tolerance_ns'] / 1e6:g} ms): {matching['pairs']} pairs, "
        f"{matching['only_in_live']} only in live, {matching['only_in_backtest']} only in the backtest",
    ]  # fmt: skip
    for name, run in (("live", live), ("backtest", backtest)):
        assumed, seen = run["assumed_latency_ns"], run["seen_response_latency_ns"]
        said = (f"assumed {_ms(assumed['order'])} to the venue + {_ms(assumed['response'])} back"
                if assumed["order"] is not None else "nothing assumed (live venue)")  # fmt: skip
        lines.append(
            f"{name:8} orders {run['orders']}: {run['filled']} filled, {run['partially_filled']} partially, "
            f"{run['unfilled']} unfilled, {run['refused_by_risk']} refused by risk; latency {said}, seen median {_ms(seen['median'])} (max {_ms(seen['max'])}, "
            f"{seen['orders_answered']} answered); {run['round_trips']} round trips, PnL after fees "
            f"{run['round_trip_pnl']}"
        )  # fmt: skip
    marks = ", ".join(f"{k} {m['mid']} ({m['from_session']})" for k, m in report["marks"].items())
    lines += [f"marked at the last mid: {marks}", "", "Orders (live / backtest)"]
    header = (f"  {'placed (UTC)':24} {'venue':14} {'side':5} {'filled live/bt':26} {'avg price live/bt':28} "
              f"{'slip bps live/bt':20} {'fees live/bt':26} {'latency live/bt':18} pnl diff")  # fmt: skip
    lines.append(header)
    shown = [o for o in report["orders"] if every_order or differs(o)]
    lines += [_order_line(order) for order in shown]
    if len(shown) < len(report["orders"]):
        lines.append(f"  ({len(report['orders']) - len(shown)} pairs that filled, priced and paid the same are not "
                     "shown; --all lists them)")  # fmt: skip
    lines += ["", "PnL difference, live - backtest, at the marks"]
    for currency, parts in report["pnl_difference"].items():
        lines.append(f"  {currency}")
        lines += [f"    {PART_LABELS[name]:58} {value:>20}" for name, value in parts.items()]
        each = f"(live {live['pnl_at_mark'].get(currency, '0')}, backtest {backtest['pnl_at_mark'].get(currency, '0')})"
        lines.append(f"    {'PnL of each run at the marks':58} {each}")
    lines += [f"note: {note}" for note in report["notes"]]
    return lines


def _order_line(order: dict[str, Any]) -> str:
    live, backtest = order["live"], order["backtest"]

    def pair(key: str, fmt: Any = str) -> str:
        return " / ".join("-" if o is None or o[key] is None else fmt(o[key]) for o in (live, backtest))

    def filled(o: dict[str, Any] | None) -> str:
        if o is None:
            return "-"
        if o["status"].startswith("refused by risk"):
            return "risk " + o["status"].removeprefix("refused by risk (").rstrip(")")
        return o["filled_quantity"] + ("" if o["filled_quantity"] == o["quantity"] else f" {o['status']}")

    when = utc(order["placed_ns"])
    side = order["side"] + (" R" if order["repair"] else "")
    return (f"  {when:24} {order['venue']:14} {side:5} {filled(live) + ' / ' + filled(backtest):26} {pair('avg_price'):28} "
            f"{pair('slippage_bps'):20} {pair('fees'):26} {pair('response_latency_ns', _ms):18} "
            f"{order['pnl_difference']['total']}")  # fmt: skip


def _ms(ns: int | None) -> str:
    return "n/a" if ns is None else f"{ns / 1e6:g} ms"
