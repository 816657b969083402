"""What tracing costs the worker's per-tick path: `PartitionKernels.process` (decode, re-stamp, kernel,
encode) on the sample's market data in memory, no Kafka, in interleaved rounds:

- bare: no instruments at all (the worker before this change);
- metrics, no tracing code: the worker's Prometheus instruments with a tracer stub that does nothing;
- metrics, tracing off: the same with `Tracing.off()` (what every deployment without CSE_OTLP_ENDPOINT runs);
- tracing on, 1 % sampled / 100 % sampled: spans to the SDK's in-memory exporter.

    .venv/bin/python tests/bench/bench_tracing.py [--rounds 5] [--no-docs]

"Tracing off costs nothing measurable" = the two middle rows agree within the spread of the rounds.
Writes its table between the `bench:tracing` markers of docs/benchmarks.md (unless --no-docs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "bench")]

from docs_section import write_section  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from adapters.entrypoints.commands import load_run_config, simulated_venues  # noqa: E402
from adapters.observability.tracing import Tracing  # noqa: E402
from adapters.observability.worker import WorkerInstruments  # noqa: E402
from streams.serialization import header_map  # noqa: E402
from streams.worker import InMessage, PartitionKernels  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench:tracing:start -->", "<!-- bench:tracing:end -->"


class NoTracing(Tracing):
    """Metrics only: no tracing code on the path at all (the baseline `Tracing.off()` is measured against)."""

    _null: contextlib.AbstractContextManager[None] = contextlib.nullcontext()

    def consume(self, name: str, headers: Mapping[str, bytes], attributes: Mapping[str, Any] | None = None
                ) -> contextlib.AbstractContextManager[None]:  # fmt: skip
        return self._null

    def traceparent(self) -> str | None:
        return None


def variants() -> dict[str, Callable[[], WorkerInstruments | None]]:
    return {
        "bare (no instruments)": lambda: None,
        "metrics, no tracing code": lambda: WorkerInstruments(NoTracing(), "bench"),
        "metrics, tracing off": lambda: WorkerInstruments(Tracing.off(), "bench"),
        "tracing on, 1 % sampled": lambda: WorkerInstruments(
            Tracing.configure("bench", sample_ratio=0.01, exporter=InMemorySpanExporter()), "bench"),
        "tracing on, 100 % sampled": lambda: WorkerInstruments(
            Tracing.configure("bench", sample_ratio=1.0, exporter=InMemorySpanExporter()), "bench"),
    }  # fmt: skip


def run_once(inputs: list[InMessage], instruments: WorkerInstruments | None) -> float:
    kernels = PartitionKernels(load_run_config(REPO / "deploy/samples/spread-demo.toml"), simulated_venues,
                               instruments=instruments)  # fmt: skip
    started = time.process_time()  # this process's CPU: less disturbed by other work on a shared machine
    kernels.process_all(inputs)
    return len(inputs) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    from bench_streams import load_messages

    with tempfile.TemporaryDirectory() as tmp:
        messages = load_messages(Path(tmp))
    inputs = [InMessage("md", 0, i, k, v, header_map(h)) for i, (v, k, h, _) in enumerate(messages)]
    rates: dict[str, list[float]] = {name: [] for name in variants()}
    for round_ in range(args.rounds):
        for name, make in variants().items():
            rates[name].append(run_once(inputs, make()))
            print(f"round {round_ + 1} {name}: {rates[name][-1]:,.0f} ticks/s", flush=True)
    base = statistics.median(rates["metrics, no tracing code"])
    lines = [START, "", f"`python tests/bench/bench_tracing.py --rounds {args.rounds}` - {time.strftime('%Y-%m-%d %H:%M')}, "
             f"{platform.python_version()}, {os.cpu_count()} cores; `PartitionKernels.process` on the sample's "
             f"{len(inputs):,} ticks in memory, variants interleaved in each round.", "",
             "| variant | median ticks per CPU-second | min - max | vs metrics without tracing code |", "|---|---|---|---|"]  # fmt: skip
    for name, values in rates.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:,.0f} | {min(values):,.0f} - {max(values):,.0f} | "
                     f"{(median / base - 1) * 100:+.1f} % |")  # fmt: skip
    off, stub = rates["metrics, tracing off"], rates["metrics, no tracing code"]
    spread = (max(stub) - min(stub)) / statistics.median(stub) * 100
    delta = (statistics.median(off) / statistics.median(stub) - 1) * 100
    lines += ["", f"Tracing off vs no tracing code: {delta:+.1f} % (the rounds of the baseline alone spread "
              f"{spread:.1f} %): {'within noise' if abs(delta) <= spread else 'MEASURABLE'}.", "", END]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if not args.no_docs:
        write_section(DOCS, text, START, END, "Tracing overhead")


if __name__ == "__main__":
    main()
