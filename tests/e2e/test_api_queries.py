"""Every read-model query of the API answers what the plain fold of the log says (projections.testing), paged
through to the end with the Relay cursors; the spread history comes from the embedded time series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.sqlite_event_log import SqliteEventLog
from projections.testing import expected_read_models
from tests.api_support import SESSION, Server, running_server, sample_home


def _all(server: Server, field: str, selection: str) -> list[dict[str, Any]]:
    query = (f"query($s: String!, $after: String) {{ {field}(session: $s, first: 13, after: $after) "
             f"{{ edges {{ node {{ {selection} }} }} pageInfo {{ hasNextPage endCursor }} }} }}")  # fmt: skip
    nodes, after = [], None
    while True:
        body = server.post(query, {"s": SESSION, "after": after})
        assert "errors" not in body, body
        page = body["data"][field]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_every_query_equals_the_fold(tmp_path: Path) -> None:
    settings = sample_home(tmp_path, orders=40)
    with SqliteEventLog(settings.event_log_path) as log:
        expected = expected_read_models(log, SESSION)
        spread_points = {(e["instrument"], e["buy_venue"], e["sell_venue"], e["envelope"]["event_time_ns"])
                         for stream in log.streams(SESSION) for s in log.read(SESSION, stream)
                         if s.record.event_type == "signal.spread_opportunity"
                         for e in [json.loads(s.record.payload)]}  # fmt: skip
    with running_server(settings) as server:
        fills = _all(server, "fills", "venue venueTradeId")
        signals = _all(server, "signals", "opportunityId")
        equity = _all(server, "equity", "eventId")
        risk_events = _all(server, "riskEvents", "eventType")
        body = server.post("""query($s: String!) {
          sessions { sessionId mode configHash digest status }
          spreads(session: $s) { instrument buyVenue sellVenue eventTimeNs count }
          riskState(session: $s) { killSwitchEngaged rejections checksPassed }
          series(session: $s, measurement: "spread", last: 500) { timeNs tags fields }
        }""", {"s": SESSION})  # fmt: skip
    assert "errors" not in body, body
    data = body["data"]
    assert {(f["venue"], f["venueTradeId"]) for f in fills} == expected["fills"] and len(fills) == len(
        expected["fills"]
    )
    assert {s["opportunityId"] for s in signals} == {str(i) for i in expected["signals"]}
    assert {e["eventId"] for e in equity} == {str(i) for i in expected["equity"]}
    session = next(s for s in data["sessions"] if s["sessionId"] == SESSION)
    assert (
        session["mode"] == expected["session"]["mode"] and session["digest"] == expected["session"]["digest"]
    )
    assert {(s["instrument"], s["buyVenue"], s["sellVenue"]): (int(s["eventTimeNs"]), s["count"])
            for s in data["spreads"]} == {k: (v[0], v[2]) for k, v in expected["latest"].items()}  # fmt: skip
    risk = data["riskState"]
    assert (risk["killSwitchEngaged"], risk["rejections"], risk["checksPassed"]) == (
        expected["risk"]["kill"],
        expected["risk"]["rejections"],
        expected["risk"]["passed"],
    )
    assert sum(e["eventType"] == "risk.check_rejected" for e in risk_events) == expected["risk"]["rejections"]
    series = data["series"]
    assert {(p["tags"]["instrument"], p["tags"]["buy_venue"], p["tags"]["sell_venue"], int(p["timeNs"]))
            for p in series} == spread_points and len(series) == len(spread_points)  # fmt: skip
    assert [int(p["timeNs"]) for p in series] == sorted(int(p["timeNs"]) for p in series)
