"""SIGKILL a writer mid-way: every acknowledged batch survives intact and no batch is half there."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[2]
BATCH = 400

WRITER = textwrap.dedent(
    """
    import hashlib, json, sys
    from adapters.sqlite_event_log import SqliteEventLog
    from application.ports import LogRecord

    log = SqliteEventLog(sys.argv[1])
    batch_size = int(sys.argv[2])
    b = 0
    while True:
        records = []
        for i in range(batch_size):
            body = {"b": b, "i": i, "pad": "x" * 200}
            digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
            records.append(LogRecord("s%d" % (i % 3), str(b), "t", b * batch_size + i,
                                      json.dumps({**body, "sha": digest}).encode()))
        offsets = log.append("crash", records)
        print("ACK", b, json.dumps(offsets), flush=True)
        b += 1
    """
)


def _intact(payload: bytes) -> dict[str, object]:
    doc = json.loads(payload)
    sha = doc.pop("sha")
    assert hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest() == sha
    return doc


def test_sigkill_loses_no_acknowledged_batch_and_leaves_no_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(BATCH)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    acked: dict[int, list[int]] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            _, b, offsets = line.split(" ", 2)
            acked[int(b)] = json.loads(offsets)
            if len(acked) >= 25:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: the writer is busy with its next batch
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 25

    with SqliteEventLog(path) as log:
        by_batch: dict[int, list[tuple[str, int]]] = {}
        total = 0
        for stream in log.streams("crash"):
            offsets = []
            for stored in log.read("crash", stream):
                doc = _intact(stored.record.payload)
                by_batch.setdefault(int(doc["b"]), []).append((stream, stored.offset))  # type: ignore[call-overload]
                offsets.append(stored.offset)
                total += 1
            assert offsets == list(range(log.end_offset("crash", stream)))  # no holes, cache agrees
        # every acknowledged batch is there, at the offsets it was acknowledged with
        for b, offsets in acked.items():
            assert sorted(o for _, o in by_batch[b]) == sorted(offsets)
        # no partial batch: every batch present is complete (the one in flight may be complete or absent)
        assert all(len(members) == BATCH for members in by_batch.values())
        assert set(by_batch) >= set(acked) and max(by_batch) <= max(acked) + 1
        assert total == BATCH * len(by_batch)
