"""Backtest runs submitted through the API: each runs in a worker process (a backtest is CPU-bound and
must not stall the server), reporting progress through a queue that a thread of the server drains.

The runner itself (import-free of this module) comes from the composition root; it must be a module-level
function so the spawned process can import it."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

Runner = Callable[[str, str, str, Any], dict[str, Any]]
"""(input session, run configuration text, run id, progress queue) -> summary; puts ("total", n) and
("progress", n) messages on the queue."""


@dataclass(frozen=True)
class RunState:
    run_id: str
    session: str
    status: str = "queued"  # queued | running | succeeded | failed
    events_done: int = 0
    events_total: int = 0
    error: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def progress(self) -> float:
        if self.status == "succeeded":
            return 1.0
        return min(self.events_done / self.events_total, 1.0) if self.events_total else 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


def _child(runner: Runner, session: str, config: str, run_id: str, q: Any) -> None:
    try:
        q.put(("done", runner(session, config, run_id, q)))
    except Exception as exc:  # reported to the client: the process must always say how it ended
        q.put(("error", f"{type(exc).__name__}: {exc}"))


@dataclass
class BacktestJobs:
    runner: Runner
    runs: dict[str, RunState] = field(default_factory=dict)
    _changed: asyncio.Condition | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def submit(self, run_id: str, session: str, config: str) -> RunState:
        if run_id in self.runs and not self.runs[run_id].finished:
            return self.runs[run_id]
        self._loop = asyncio.get_running_loop()
        self._changed = self._changed or asyncio.Condition()
        state = self.runs[run_id] = RunState(run_id, session)
        ctx = multiprocessing.get_context("spawn")  # no fork of a process running an event loop and threads
        q = ctx.Queue()
        proc = ctx.Process(target=_child, args=(self.runner, session, config, run_id, q), daemon=True)
        proc.start()
        threading.Thread(target=self._watch, args=(run_id, proc, q), daemon=True).start()
        return state

    def _watch(self, run_id: str, proc: Any, q: Any) -> None:
        self._update(run_id, status="running")
        while True:
            try:
                kind, value = q.get(timeout=0.5)
            except queue.Empty:
                if not proc.is_alive():
                    self._update(run_id, status="failed", error=f"worker exited with code {proc.exitcode}")
                    return
                continue
            if kind == "total":
                self._update(run_id, events_total=value)
            elif kind == "progress":
                self._update(run_id, events_done=self.runs[run_id].events_done + value)
            elif kind == "done":
                self._update(run_id, status="succeeded", summary=value)
                break
            else:
                self._update(run_id, status="failed", error=str(value))
                break
        proc.join(timeout=10)

    def _update(self, run_id: str, **changes: Any) -> None:
        self.runs[run_id] = replace(self.runs[run_id], **changes)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._notify()))

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def wait_change(self, timeout: float) -> None:
        self._changed = self._changed or asyncio.Condition()
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass
