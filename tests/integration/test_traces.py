"""One trace follows a tick across processes: `cse record` publishes it, `cse worker` runs it through
strategy, risk, execution and the simulated venues, `cse project --follow` applies the derived events; each
process exports its spans over OTLP to a collector in the test, and the spans of one tick share one trace id
and chain parent to child (record -> worker -> projector). With a sampling ratio, every process keeps the
same traces. Fails (never skips) when Kafka is unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from streams.topics import TopicConfig, create_topics
from tests.otlp_collector import OtlpCollector, ReceivedSpan
from tests.service_process import ROOT, ServiceProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SAMPLES = ROOT / "deploy" / "samples"
CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz", SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]
SESSION = "trace-btcusdt"
RATIO = 0.1


def _cse(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", *args], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _chains(spans: list[ReceivedSpan]) -> list[tuple[ReceivedSpan, ReceivedSpan, ReceivedSpan]]:
    """(record span, worker span, projector span of a derived event) chained parent to child in one trace."""
    by_id = {s.span_id: s for s in spans}
    chains = []
    for applied in spans:
        if applied.service != "projector" or applied.attributes.get("cse.stream") != "derived":
            continue
        worker = by_id.get(applied.parent_id)
        record = by_id.get(worker.parent_id) if worker is not None else None
        if worker is not None and record is not None and worker.service == "worker" and record.service == "record":
            chains.append((record, worker, applied))
    return chains


def test_one_tick_is_one_trace_across_record_worker_and_projector(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"cse-it-trace-{uuid.uuid4().hex[:10]}"
    assert set(create_topics(kafka_bootstrap, TopicConfig(prefix=prefix, partitions=1)).values()) == {"created"}
    home = tmp_path / "home"
    base_env = {"CSE_HOME": str(home), "CSE_KAFKA_BOOTSTRAP": kafka_bootstrap, "CSE_TOPIC_PREFIX": prefix}
    _cse(["import", *map(str, CAPTURES), "--session", SESSION], base_env)
    collector = OtlpCollector()
    env = {**base_env, "CSE_OTLP_ENDPOINT": collector.endpoint, "CSE_TRACE_SAMPLE_RATIO": str(RATIO)}
    worker = ServiceProcess("worker", ["worker", "--config", str(SAMPLES / "spread-demo.toml")],
                            {**env, "CSE_WORKER_SESSION_TIMEOUT_S": "8"}, tmp_path / "worker.log")  # fmt: skip
    projector = ServiceProcess("projector", ["project", "--follow", "--source", "kafka", "--target", "embedded",
                                             "--no-timeseries", "--poll-interval", "0.5"], env,
                               tmp_path / "projector.log")  # fmt: skip
    try:
        worker.wait_healthy()
        projector.wait_healthy()
        published = json.loads(_cse(["record", "--from-file", SESSION, "--inputs-only"], env).splitlines()[-1])
        try:
            wait_for("a traced tick with derived events projected", lambda: _chains(collector.snapshot()),
                     timeout=float(os.environ.get("CSE_TEST_TRACE_TIMEOUT", "300")), every=2.0)  # fmt: skip
        except AssertionError as exc:
            seen = Counter((s.service, s.name, s.attributes.get("cse.stream", "")) for s in collector.snapshot())
            raise AssertionError(f"{exc}; spans received: {dict(seen)}") from None
        assert worker.terminate() == 0, worker.output()[-3000:]
        assert projector.terminate() == 0, projector.output()[-3000:]  # flushes the spans still buffered
    finally:
        worker.kill()
        projector.kill()
        collector.close()

    spans = collector.snapshot()
    chains = _chains(spans)
    for record, worker_span, applied in chains:
        assert record.trace_id == worker_span.trace_id == applied.trace_id
        assert (record.name, worker_span.name, applied.name) == ("log.publish", "worker.process", "projector.apply")
    # sampling is decided on the trace id: every tick the worker traced was traced by the recorder too
    by_service: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        by_service[span.service].add(span.trace_id)
    assert by_service["worker"] and by_service["worker"] <= by_service["record"]
    traced = sum(1 for s in spans if s.service == "record")
    assert 0.5 * RATIO < traced / published["inputs"] < 1.5 * RATIO  # trace ids are uniform: ~RATIO kept
