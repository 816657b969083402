"""The worker's instruments (`streams.worker.Instruments`): inputs, derived events and dead letters per
partition, kernel latency, recoveries and consumer lag as Prometheus metrics; trading metrics from the
derived events (`derived.py`); one span per input continuing the trace of its message (`tracing.py`).

Counters count work done by this process: a partition re-run after a rebalance counts its inputs and
derived events again (rate() over a restart or a re-run shows the extra work, not extra trading).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from adapters.observability import metrics as m
from adapters.observability.derived import DerivedEventMetrics
from adapters.observability.tracing import Tracing
from domain.events import EventBase


class WorkerInstruments:
    def __init__(self, tracing: Tracing, group: str, account: str = "default") -> None:
        self.tracing = tracing
        self.group = group
        self.on_derived = DerivedEventMetrics(account)
        self._inputs: dict[int, Any] = {}
        self._derived: dict[int, Any] = {}

    def consume(self, headers: Mapping[str, bytes]) -> AbstractContextManager[Any]:
        return self.tracing.consume("worker.process", headers)

    def traceparent(self) -> str | None:
        return self.tracing.traceparent()

    def derived(self, event: EventBase) -> None:
        self.on_derived(event)

    def processed(self, partition: int, seconds: float, inputs: int, derived: int, dead_letters: int) -> None:
        if inputs:
            m.KERNEL_LATENCY.observe(seconds)
        if partition not in self._inputs:  # label lookups once per partition, not per input
            self._inputs[partition] = m.WORKER_INPUTS.labels(str(partition))
            self._derived[partition] = m.WORKER_DERIVED.labels(str(partition))
        if inputs:
            self._inputs[partition].inc(inputs)
        if dead_letters:
            m.WORKER_DEAD_LETTERS.inc(dead_letters)
        if derived:
            self._derived[partition].inc(derived)

    def recovered(self, kind: str) -> None:
        m.WORKER_RECOVERIES.labels(kind).inc()

    def lag(self, topic: str, partition: int, messages: int) -> None:
        m.CONSUMER_LAG.labels(self.group, topic, str(partition)).set(messages)
