"""A run's inputs read straight from a columnar file (`adapters.columnar.inputs.FileInputs`): the compiled core
must see exactly the rows it sees when it is fed the events, and a message built from the converted slice must
be the event the file holds, byte for byte. Files are read a record batch at a time, messages may span two."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import adapters.columnar.store as store
from adapters.columnar.inputs import FileInputs
from adapters.importers.binance_ws import import_binance_ws
from adapters.market_core import RowBuilder
from adapters.sqlite_event_log import SqliteEventLog
from application.session_run import MergeRecorder
from domain.events import encode

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = [REPO / "deploy/samples/hftbacktest/spot/btcusdt_20240808.gz",
          REPO / "deploy/samples/hftbacktest/usdm/btcusdt_20240808.gz"]  # fmt: skip
SESSION = "sample"


@pytest.fixture(scope="module", params=[store.ROWS_PER_BATCH, 1_000], ids=["batches-64k", "batches-1000"])
def inputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FileInputs:
    """The shipped sample imported into a columnar file; with 1,000-row batches, messages span batches."""
    patch = pytest.MonkeyPatch()
    patch.setattr(store, "ROWS_PER_BATCH", request.param)
    home = tmp_path_factory.mktemp("inputs")
    log = SqliteEventLog(home / "events.sqlite", catalog=home / "catalog")
    import_binance_ws(log, SESSION, SAMPLE, code_version=lambda: "test", echo=None)
    patch.undo()
    columns = log.input_columns(SESSION, tuple(log.market_data(SESSION).streams), "run")
    assert columns is not None
    assert isinstance(columns, FileInputs)
    assert columns.file._reader.num_record_batches > (30 if request.param == 1_000 else 0)
    return columns


def test_core_columns_are_the_rows_the_events_give(inputs: FileInputs) -> None:
    events = [event for _, event in inputs.events()]
    assert len(events) == len(inputs)
    keys: dict[tuple[str, str], int] = {}

    def key_of(venue: str, instrument: str) -> int:
        return keys.setdefault((venue, instrument), len(keys) + 1)

    fed = RowBuilder({})
    for event in events:
        venue, instrument = getattr(event, "venue", None), getattr(event, "instrument", None)
        fed.add(event, key_of(venue, instrument) if isinstance(venue, str) and isinstance(instrument, str) else 0)
    want = fed.columns()
    slices, start = [], 0
    while start < inputs.rows:
        stop = inputs.slice_stop(start, 4_096)
        slices.append(inputs.core_columns(start, stop, key_of))
        start = stop
    for name, column in want.items():
        got = np.concatenate([part[name] for part in slices])
        assert got.dtype == column.dtype, name
        assert np.array_equal(got, column), name


def test_a_message_built_from_the_slice_is_the_stored_event(inputs: FileInputs) -> None:
    by_row = {int(row): event for row, (_, event) in zip(inputs.file.message_starts, inputs.events(), strict=True)}
    checked, start = 0, 0
    while start < inputs.rows:
        stop = inputs.slice_stop(start, 8_192)
        inputs.core_columns(start, stop, lambda venue, instrument: 1)
        for row in inputs.file.message_starts[(inputs.file.message_starts >= start) &
                                              (inputs.file.message_starts < stop)].tolist()[::3]:  # fmt: skip
            inputs._cache.clear()
            assert encode(inputs.message(row)) == encode(by_row[row]), row
            checked += 1
        start = stop
    assert checked > len(inputs) // 4


def test_runs_and_times_record_the_merge_order_an_event_by_event_run_records(inputs: FileInputs) -> None:
    streams = tuple(inputs.file.streams)
    one_by_one, bulk = MergeRecorder("run", streams, chunk=5_000), MergeRecorder("run", streams, chunk=5_000)
    expected = [c for stream, event in inputs.events() if (c := one_by_one.add(stream, event.envelope.event_time_ns))]
    expected.append(one_by_one.flush())
    got = bulk.add_runs(inputs.runs(), inputs.time_at)
    got.append(bulk.flush())
    assert [encode(c) for c in got] == [encode(c) for c in expected]
    assert len(expected) > 2
