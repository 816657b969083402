"""The embedded log's follower: a record committed by another connection (another process, in production)
reaches it, once, in order, although the follower reads the log only after its commit check says so;
nothing before the follow started is delivered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.log_feed import LogFeed
from adapters.sqlite_event_log import SqliteEventLog
from application.ports import LogRecord

pytestmark = pytest.mark.unit


def _record(i: int) -> LogRecord:
    return LogRecord("commands", "k", "command.test", i, b'{"i":%d}' % i)


def test_follow_delivers_what_another_connection_commits_promptly_and_once(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    with SqliteEventLog(path) as log:
        log.append("s", [_record(0)])  # before the follow: not delivered

    async def main() -> list[int]:
        feed = LogFeed(path, poll_seconds=0.005)
        got: list[int] = []

        async def follow() -> None:
            async for item in feed.follow("s"):
                got.append(item.record.event_time_ns)
                if len(got) == 3:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.1)  # the follower is idle, asking only whether anything was committed
        with SqliteEventLog(path) as writer:
            for i in (1, 2, 3):
                writer.append("s", [_record(i)])
                await asyncio.sleep(0.05)
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(main()) == [1, 2, 3]
