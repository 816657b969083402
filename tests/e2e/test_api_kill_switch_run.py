"""Issue 13's "a mutation's command appears on the log and its effect in the read model after projection", on
the shipped sample: an admin engages the kill switch of the run's account through GraphQL at a chosen event
time, a backtest runs over the session, `cse project` projects it, and the API shows the switch engaged (caused
by the command) and no order passing risk from that time on. A trader key is refused, and the run replays
with zero divergences."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from application.operator_commands import COMMANDS_STREAM
from domain.events import input_event_id
from tests.api_support import Server, running_server

CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
CONFIG = SAMPLES / "spread-demo.toml"  # account "demo"
KILL_AT_NS = 1_723_161_278_500_000_000  # 25 s into the sample: the strategy is still trading
ENGAGE = """mutation($s: String!, $at: BigInt, $account: String) {
  engageKillSwitch(session: $s, reason: "desk limit", account: $account, atNs: $at) { commandId type sequence }
}"""
ORDERS = """query($s: String!, $after: String) { orders(session: $s, first: 500, after: $after) {
  edges { node { orderId history { eventType eventTimeNs } } } pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("api-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CSE_HOME", str(home))
        mp.delenv("CSE_EVENT_LOG", raising=False)
        assert main(["import", *map(str, CAPTURES), "--session", "s"]) == 0
        with running_server(Settings(home=home)) as srv:
            yield srv


def _commands(server: Server) -> int:
    with SqliteEventLog(server.settings.event_log_path) as log:
        return log.end_offset("s", COMMANDS_STREAM)


def _all_orders(server: Server, session: str) -> list[dict[str, Any]]:
    orders, after = [], None
    while True:
        page = server.post(ORDERS, {"s": session, "after": after})["data"]["orders"]
        orders += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return orders
        after = page["pageInfo"]["endCursor"]


def test_a_trader_key_is_refused_the_kill_switch_and_nothing_is_stored(server: Server) -> None:
    body = server.post(ENGAGE, {"s": "s", "at": str(KILL_AT_NS), "account": "demo"}, role="trader")
    assert body["data"] is None
    assert (
        body["errors"][0]["message"]
        == "engageKillSwitch requires the admin role; this key has the trader role"
    )
    assert _commands(server) == 0


def test_a_command_without_a_time_on_a_recorded_import_is_refused(server: Server) -> None:
    body = server.post(ENGAGE, {"s": "s"}, role="admin")
    message = body["errors"][0]["message"]
    assert message.startswith("engageKillSwitch: session 's' is a recorded import whose market data ends at")
    assert message.endswith("a command timed now would come after all of it; pass atNs"), message
    assert _commands(server) == 0


def test_kill_switch_mutation_reaches_the_run_and_the_read_model(server: Server,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    receipt = server.post(ENGAGE, {"s": "s", "at": str(KILL_AT_NS), "account": "demo"}, role="admin")
    receipt = receipt["data"]["engageKillSwitch"]
    with SqliteEventLog(server.settings.event_log_path) as log:
        logged = json.loads(
            next(iter(log.read("s", COMMANDS_STREAM, int(receipt["sequence"])))).record.payload
        )
    assert logged["envelope"]["event_id"] == receipt["commandId"]
    assert (logged["account"], logged["operator"], logged["envelope"]["event_time_ns"]) == (
        "demo", "api:test-admin", KILL_AT_NS)  # fmt: skip

    assert main(["backtest", "--session", "s", "--config", str(CONFIG), "--id", "bt"]) == 0
    assert main(["project", "--session", "bt", "--no-timeseries"]) == 0
    capsys.readouterr()

    risk = server.post('query { riskState(session: "bt") { killSwitchEngaged killSwitchReason killSwitchChangedNs '
                       "checksPassed } }")["data"]["riskState"]  # fmt: skip
    assert risk["killSwitchEngaged"] is True and risk["killSwitchReason"] == "desk limit"
    assert int(risk["killSwitchChangedNs"]) == KILL_AT_NS
    assert risk["checksPassed"] > 0
    events = server.post('query { riskEvents(session: "bt", first: 500) { edges { node { eventType rule '
                         "eventTimeNs } } } }")["data"]["riskEvents"]["edges"]  # fmt: skip
    refused = {int(e["node"]["eventTimeNs"]) for e in events if e["node"]["rule"] == "kill_switch"}
    assert refused and min(refused) > KILL_AT_NS  # the strategy's next signals are refused by the switch

    # the read model keeps no causation: the audit query of the log shows the chain. The run holds its own
    # copy of the command (re-stamped into the run, same sequence); the switch was engaged by that copy.
    page = server.post('query { events(session: "bt", types: ["command.engage_kill_switch", '
                       '"risk.kill_switch_engaged"], first: 10) { edges { node { type data } } } }')  # fmt: skip
    nodes = {n["node"]["type"]: n["node"]["data"] for n in page["data"]["events"]["edges"]}
    copy, engaged = nodes["command.engage_kill_switch"], nodes["risk.kill_switch_engaged"]
    assert copy["envelope"]["event_id"] == str(
        input_event_id("bt", COMMANDS_STREAM, int(receipt["sequence"]))
    )
    assert {k: v for k, v in copy.items() if k != "envelope"} == {
        k: v for k, v in logged.items() if k != "envelope"
    }
    assert engaged["envelope"]["causation_id"] == copy["envelope"]["event_id"]
    assert (engaged["account"], engaged["scope"]) == ("demo", "account")

    passed = [int(h["eventTimeNs"]) for o in _all_orders(server, "bt") for h in o["history"]
              if h["eventType"] == "risk.check_passed"]  # fmt: skip
    assert passed and max(passed) < KILL_AT_NS, "an order passed risk after the kill switch"

    capsys.readouterr()
    assert main(["replay", "bt", "--verify"]) == 0
    assert "identical" in capsys.readouterr().out
