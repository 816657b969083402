"""The read model of the kill switches follows risk's own events (scope, account, still_engaged), on SQLite.

Two accounts, each with its risk decider. Account "a" engages its own switch, then an operator engages the
global one and releases it: "a" must stay engaged (its own switch is still on), "b" must not; the session is
engaged until "a" releases its own switch too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlite_event_log import SqliteEventLog
from domain.events import (
    EngageKillSwitch,
    EventBase,
    KillSwitchEngaged,
    KillSwitchReleased,
    ReleaseKillSwitch,
    SessionStarted,
)
from domain.risk import RiskDecider
from projections.models import Base
from projections.projector import SqlProjector
from projections.schema import make_engine, migrate
from projections.testing import SampleWriter
from tests.unit.decider_harness import DeciderHarness

pytestmark = pytest.mark.unit

SESSION = "ks"


async def _switches(engine: AsyncEngine) -> tuple[dict[str, tuple[bool, bool, bool]], tuple[bool, str, str]]:
    t = Base.metadata.tables
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(t["risk_kill_switches"]).where(t["risk_kill_switches"].c.session_id == SESSION)
            )
        ).all()
        state = (
            await conn.execute(select(t["risk_state"]).where(t["risk_state"].c.session_id == SESSION))
        ).one()
    switches = {r.account: (r.global_engaged, r.account_engaged, r.engaged) for r in rows}
    return switches, (state.kill_switch_engaged, state.kill_switch_accounts, state.kill_switch_reason)


async def test_a_global_release_leaves_an_account_with_its_own_switch_engaged(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'read.sqlite'}"
    await migrate(url)
    engine = make_engine(url)
    desk = DeciderHarness(RiskDecider("a"), RiskDecider("b"))
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        w = SampleWriter(log, SESSION)
        w.add("session", SessionStarted(envelope=w.env(1), mode="backtest", config_hash="c", model_hash="",
                                        code_version="t"))  # fmt: skip
        projector = SqlProjector(engine, log)

        async def command(event: EventBase) -> list[EventBase]:
            out = [e for e in desk.feed(event) if isinstance(e, KillSwitchEngaged | KillSwitchReleased)]
            for e in out:
                w.add("derived", e)
            w.flush()
            await projector.project_session(SESSION)
            return out

        engaged = await command(EngageKillSwitch(envelope=desk.env(10), reason="a misbehaves", operator="ops",
                                                 account="a"))  # fmt: skip
        assert [(e.account, e.scope) for e in engaged] == [("a", "account")]
        assert await _switches(engine) == ({"a": (False, True, True)}, (True, '["a"]', "a misbehaves"))

        await command(EngageKillSwitch(envelope=desk.env(20), reason="venue down", operator="ops"))
        assert (await _switches(engine))[0] == {"a": (True, True, True), "b": (True, False, True)}
        assert (await _switches(engine))[1][:2] == (True, '["a", "b"]')

        released = await command(
            ReleaseKillSwitch(envelope=desk.env(30), reason="venue back", operator="ops")
        )
        assert [(e.account, e.scope, e.still_engaged) for e in released] == [  # type: ignore[union-attr]
            ("a", "global", True),
            ("b", "global", False),
        ]
        assert await _switches(engine) == (
            {"a": (False, True, True), "b": (False, False, False)},
            (True, '["a"]', 'venue back (still engaged for ["a"])'),
        )

        await command(ReleaseKillSwitch(envelope=desk.env(40), reason="a fixed", operator="ops", account="a"))
        assert await _switches(engine) == (
            {"a": (False, False, False), "b": (False, False, False)},
            (False, "[]", "a fixed"),
        )
        # Projecting again (a redelivery) changes nothing.
        before = await _switches(engine)
        assert await projector.project_session(SESSION) == 0
        assert await _switches(engine) == before
    await engine.dispose()
