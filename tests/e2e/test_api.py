"""The API end to end on the real server (uvicorn) with a real websocket client, embedded default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from application.operator_commands import COMMANDS_STREAM
from tests.api_support import LIVE, SESSION, Server, WsClient, project_embedded, running_server, sample_home

REPLAY = """subscription($s: String!, $speed: Float, $types: [String!]) {
  events(session: $s, replaySpeed: $speed, types: $types) { stream offset type eventTimeNs eventId }
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = sample_home(tmp_path_factory.mktemp("api"))
    with running_server(settings) as srv:
        yield srv


def _recorded(server: Server, types: set[str] | None = None) -> list[tuple[int, str, int, str]]:
    """The session's records as the log has them, in (event time, stream, offset) order."""
    with SqliteEventLog(server.settings.event_log_path) as log:
        rows = [(s.record.event_time_ns, stream, s.offset, s.record.event_type)
                for stream in log.streams(SESSION) for s in log.read(SESSION, stream)]  # fmt: skip
    return sorted(r for r in rows if types is None or r[3] in types)


def test_health_shows_no_secret(server: Server) -> None:
    import httpx

    body = httpx.get(f"{server.url}/health").json()
    assert body["status"] == "ok" and body["target"] == "embedded"


def test_subscription_receives_a_replayed_session_in_order(server: Server) -> None:
    client = WsClient(server.url, server.keys["viewer"])
    client.subscribe("r1", REPLAY, {"s": SESSION, "speed": 0})
    got = [p["data"]["events"] for p in client.until_complete("r1")]
    client.close()
    assert [(int(e["eventTimeNs"]), e["stream"], int(e["offset"]), e["type"]) for e in got] == _recorded(
        server
    )
    assert len(got) > 200


def test_subscription_filters_by_type_and_many_clients_share_one_execution(server: Server) -> None:
    wanted = {"order.filled", "order.partially_filled"}
    clients = [WsClient(server.url, server.keys["viewer"]) for _ in range(3)]
    hub = server.app.state.hub
    before = hub.executions
    # three clients of one replay each: private channels, each its own timeline
    for c in clients:
        c.subscribe("f", REPLAY, {"s": SESSION, "speed": 0, "types": sorted(wanted)})
    results = [[(int(e["data"]["events"]["eventTimeNs"]), e["data"]["events"]["stream"],
                 int(e["data"]["events"]["offset"]), e["data"]["events"]["type"]) for e in c.until_complete("f")]
               for c in clients]  # fmt: skip
    expected = _recorded(server, wanted)
    assert expected and all(r == expected for r in results)
    assert hub.executions - before == 3 * len(expected)  # only matching records are executed
    for c in clients:
        c.close()


def test_follow_delivers_appended_records_once_to_every_follower_with_one_execution(server: Server) -> None:
    query = "subscription($s: String!) { risk(session: $s) { type data } }"
    clients = [WsClient(server.url, server.keys["viewer"]) for _ in range(4)]
    for c in clients:
        c.subscribe("k", query, {"s": LIVE})
    hub = server.app.state.hub
    import time

    time.sleep(0.5)  # the followers are registered and positioned at the end of the log
    before = hub.executions
    receipt = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "test") { commandId } }',
                          {"s": LIVE}, role="admin")  # fmt: skip
    command_id = receipt["data"]["engageKillSwitch"]["commandId"]
    for c in clients:
        m = c.recv()
        assert m["type"] == "next" and m["id"] == "k"
        event = m["payload"]["data"]["risk"]
        assert event["type"] == "command.engage_kill_switch"
        assert event["data"]["envelope"]["event_id"] == command_id
        c.close()
    assert hub.executions - before == 1  # one execution, four deliveries


@pytest.mark.parametrize(
    ("role", "mutation", "allowed"),
    [
        ("viewer", 'startStrategy(session: $s, strategyId: "spread") { commandId }', False),
        ("trader", 'startStrategy(session: $s, strategyId: "spread") { commandId }', True),
        (
            "trader",
            'cancelOrder(session: $s, orderId: "00000000-0000-0000-0000-000000000001", venue: "x") { commandId }',
            True,
        ),
        (
            "viewer",
            'cancelOrder(session: $s, orderId: "00000000-0000-0000-0000-000000000001", venue: "x") { commandId }',
            False,
        ),
        ("trader", 'engageKillSwitch(session: $s, reason: "r") { commandId }', False),
        ("trader", 'releaseKillSwitch(session: $s, reason: "r") { commandId }', False),
        ("trader", "updateRiskLimits(session: $s, limits: {max_open_orders: 3}) { commandId }", False),
        ("admin", 'releaseKillSwitch(session: $s, reason: "r") { commandId }', True),
        ("trader", 'releaseDrawdownHalt(session: $s, reason: "r") { commandId }', False),
        ("admin", 'releaseDrawdownHalt(session: $s, reason: "r", account: "a") { commandId }', True),
        ("trader", 'engageKillSwitch(session: $s, reason: "r", account: "a") { commandId }', False),
        (None, 'stopStrategy(session: $s, strategyId: "spread") { commandId }', False),
    ],
)
def test_each_role_check_refuses_what_it_must(
    server: Server, role: str | None, mutation: str, allowed: bool
) -> None:
    body = server.post(f"mutation($s: String!) {{ {mutation} }}", {"s": LIVE}, role=role)
    if allowed:
        assert "errors" not in body, body
    else:
        assert body["data"] is None
        message = body["errors"][0]["message"]
        assert "requires the" in message or "requires an API key" in message, message


def test_queries_and_subscriptions_refuse_without_a_key(server: Server) -> None:
    body = server.post("{ sessions { sessionId } }", role=None)
    assert "requires an API key" in body["errors"][0]["message"]
    body = server.post("{ sessions { sessionId } }", role=None, key="cse_0000_forged")
    assert "requires an API key" in body["errors"][0]["message"]
    client = WsClient(server.url, None)
    client.subscribe("x", REPLAY, {"s": SESSION, "speed": 0})
    m = client.recv()
    assert m["type"] == "error" and "requires an API key" in m["payload"][0]["message"]
    client.close()


def test_account_scoped_commands_carry_their_account_to_the_log(server: Server) -> None:
    mutations = {
        "engageKillSwitch": 'engageKillSwitch(session: $s, reason: "r", account: "desk-2")',
        "releaseDrawdownHalt": 'releaseDrawdownHalt(session: $s, reason: "r", account: "desk-2")',
        "updateRiskLimits": 'updateRiskLimits(session: $s, limits: {max_open_orders: 3}, account: "desk-2")',
        "stopStrategy": 'stopStrategy(session: $s, strategyId: "spread", account: "desk-2")',
        "startStrategy": 'startStrategy(session: $s, strategyId: "spread")',
    }
    logged = {}
    for name, mutation in mutations.items():
        body = server.post(
            f"mutation($s: String!) {{ {mutation} {{ sequence account }} }}", {"s": LIVE}, role="admin"
        )
        receipt = body["data"][name]
        with SqliteEventLog(server.settings.event_log_path) as log:
            stored = next(iter(log.read(LIVE, COMMANDS_STREAM, int(receipt["sequence"]))))
        logged[name] = json.loads(stored.record.payload)["account"]
        assert receipt["account"] == logged[name]  # the answer says the scope too
    assert logged == {"engageKillSwitch": "desk-2", "releaseDrawdownHalt": "desk-2", "updateRiskLimits": "desk-2",
                      "stopStrategy": "desk-2", "startStrategy": None}  # fmt: skip


def test_a_command_timed_before_the_last_one_is_refused_clearly(server: Server) -> None:
    body = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "r") { commandId } }',
                       {"s": LIVE}, role="admin")  # fmt: skip
    assert "errors" not in body, body
    body = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "r", atNs: "1") { commandId } }',
                       {"s": LIVE}, role="admin")  # fmt: skip
    message = body["errors"][0]["message"]
    assert message.startswith("engageKillSwitch: event time 1 is before the session's last command"), message


def test_update_risk_limits_refuses_bad_limits_clearly(server: Server) -> None:
    body = server.post("mutation($s: String!) { updateRiskLimits(session: $s, limits: {max_open_orders: \"many\"}) "
                       "{ commandId } }", {"s": LIVE}, role="admin")  # fmt: skip
    message = body["errors"][0]["message"]
    assert message.startswith("updateRiskLimits") and "max_open_orders" in message, message


def test_mutation_command_is_on_the_log_and_in_the_read_model_after_projection(server: Server) -> None:
    body = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "from the API") '
                       "{ commandId type sequence } }", {"s": LIVE}, role="admin")  # fmt: skip
    receipt = body["data"]["engageKillSwitch"]
    with SqliteEventLog(server.settings.event_log_path) as log:
        stored = list(log.read(LIVE, COMMANDS_STREAM, int(receipt["sequence"])))
    logged = json.loads(stored[0].record.payload)
    assert logged["envelope"]["event_id"] == receipt["commandId"]
    assert logged["type"] == "command.engage_kill_switch" and logged["reason"] == "from the API"
    assert logged["operator"] == "api:test-admin"
    # the read models follow the log, never the API: after `cse project` the command's events are projected
    # (its effect through a run: tests/e2e/test_api_kill_switch_run.py)
    project_embedded(server.settings, LIVE)
    page = server.post('query($s: String!) { events(session: $s, types: ["command.*"], first: 100) '
                       "{ edges { node { eventId type } } } }", {"s": LIVE})  # fmt: skip
    assert receipt["commandId"] in [e["node"]["eventId"] for e in page["data"]["events"]["edges"]]


def test_orders_paginate_with_relay_cursors(server: Server) -> None:
    query = """query($s: String!, $after: String) { orders(session: $s, first: 7, after: $after) {
      edges { cursor node { orderId createdNs status history { eventType } fills { price } } }
      pageInfo { hasNextPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = server.post(query, {"s": SESSION, "after": after})["data"]["orders"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    all_at_once = server.post(query.replace("first: 7", "first: 500"), {"s": SESSION, "after": None})
    assert seen == [e["node"] for e in all_at_once["data"]["orders"]["edges"]]
    assert len(seen) > 14  # three pages at least
    assert [(int(o["createdNs"]), o["orderId"]) for o in seen] == sorted(
        (int(o["createdNs"]), o["orderId"]) for o in seen
    )
    assert any(o["fills"] for o in seen) and all(o["history"] for o in seen)


def test_depth_and_cost_limits_refuse_before_running(server: Server) -> None:
    body = server.post("query($s: String!) { orders(session: $s, first: 500) { edges { node { history { eventType } "
                       "fills { price fee venue side quantity asset account instrument liquidity eventId } } } } "
                       "a2: orders(session: $s, first: 500) { edges { node { fills { price fee venue side quantity "
                       "asset account instrument liquidity eventId } } } } }", {"s": SESSION})  # fmt: skip
    assert "limit is" in body["errors"][0]["message"]


def test_an_internal_error_is_masked_and_names_no_secret(server: Server) -> None:
    body = server.post('{ orders(after: "bm90LWEtY3Vyc29y") { edges { cursor } } }')
    assert "cursor" in body["errors"][0]["message"]
    for key in server.keys.values():
        assert key not in json.dumps(body)


def test_cli_api_key_create_stores_only_a_hash(tmp_path: Path) -> None:
    env = {"CSE_HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", "api-key", "create", "--role", "trader"],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    key = out.stdout.strip()
    stored = (tmp_path / "api_keys.json").read_text()
    assert key.startswith("cse_") and key not in stored and key.split("_", 2)[2] not in stored
    assert (tmp_path / "api_keys.json").stat().st_mode & 0o077 == 0


def test_cors_allows_only_the_configured_origins(tmp_path: Path) -> None:
    import httpx

    settings = sample_home(tmp_path, orders=2)
    with running_server(settings, cors_origins=["https://desk.example"]) as srv:

        def preflight(origin: str) -> httpx.Response:
            return httpx.options(f"{srv.url}/graphql", headers={"origin": origin, "access-control-request-method": "POST",
                                                                "access-control-request-headers": "authorization"})  # fmt: skip

        allowed, refused = preflight("https://desk.example"), preflight("https://evil.example")
    assert allowed.headers.get("access-control-allow-origin") == "https://desk.example"
    assert "access-control-allow-origin" not in refused.headers


def test_a_dsn_password_never_appears_in_the_error(tmp_path: Path) -> None:
    env = {"CSE_HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "CSE_PG_DSN": "postgresql+asyncpg://cse:s3cret-pw@127.0.0.1:1/cse"}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", "serve", "--target", "postgres"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "s3cret-pw" not in run.stdout + run.stderr
    assert "***" in run.stderr and "127.0.0.1:1" in run.stderr


def test_an_empty_account_is_refused_clearly(server: Server) -> None:
    body = server.post('mutation($s: String!) { stopStrategy(session: $s, strategyId: "x", account: " ") '
                       "{ commandId } }", {"s": LIVE}, role="trader")  # fmt: skip
    assert body["errors"][0]["message"] == (
        "stopStrategy: account is empty; name the account, or leave it null for every account"
    )


def test_a_command_for_a_finished_run_is_refused_clearly(server: Server) -> None:
    body = server.post('mutation($s: String!) { engageKillSwitch(session: $s, reason: "r") { commandId } }',
                       {"s": SESSION}, role="admin")  # fmt: skip
    assert body["errors"][0]["message"].startswith("engageKillSwitch: session 'api-sample' is a finished run")


def test_a_command_for_an_unknown_session_is_refused_and_stores_nothing(server: Server) -> None:
    body = server.post('mutation { startStrategy(session: "no-such-session", strategyId: "spread") { commandId } }',
                       role="trader")  # fmt: skip
    assert body["errors"][0]["message"] == "startStrategy: no session 'no-such-session' in the event log"
    with SqliteEventLog(server.settings.event_log_path) as log:
        assert "no-such-session" not in log.sessions()


def test_ticks_per_instrument(server: Server) -> None:
    query = "subscription($s: String!, $i: String) { ticks(session: $s, instrument: $i, replaySpeed: 0) { type data } }"
    client = WsClient(server.url, server.keys["viewer"])
    client.subscribe("btc", query, {"s": SESSION, "i": "BTCUSDT"})
    btc = [p["data"]["ticks"] for p in client.until_complete("btc")]
    client.subscribe("eth", query, {"s": SESSION, "i": "ETHUSDT"})
    eth = client.until_complete("eth")
    client.close()
    expected = [r for r in _recorded(server) if r[3] in ("market.quote", "market.trade")]
    assert len(btc) == len(expected) > 0 and eth == []
    assert {(t["type"], t["data"]["instrument"]) for t in btc} <= {
        ("market.quote", "BTCUSDT"),
        ("market.trade", "BTCUSDT"),
    }
