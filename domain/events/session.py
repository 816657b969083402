"""Session markers: what a session ran with, so a replay can refuse a different build or config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.events.base import EventBase


class SessionStarted(EventBase):
    type: Literal["session.started"] = "session.started"
    mode: Literal["import", "record", "backtest", "live", "paper", "replay"]
    """`live`: orders on an exchange; `paper`: live market data, a simulated venue (docs/trading-live.md);
    `record`: market data recorded from the exchanges (docs/recording.md)."""
    config_hash: str
    model_hash: str
    code_version: str
    parameters: str = "{}"
    """Canonical JSON of what the session ran with (config, input session and streams), for the replay."""


class InputsMerged(EventBase):
    """The order in which a run consumed its input streams, recorded so a replay reads it back instead of
    recomputing it: inputs `first_input`, `first_input + 1`, ... came from `streams[i]` for each run
    `(i, count)` in `runs`, in order (each stream's records in offset order). One event covers a chunk of
    consecutive inputs; the chunks of a session are contiguous."""

    type: Literal["session.inputs_merged"] = "session.inputs_merged"
    streams: tuple[str, ...]
    first_input: int
    runs: tuple[tuple[int, int], ...]


class SessionEnded(EventBase):
    type: Literal["session.ended"] = "session.ended"
    input_events: int
    derived_events: int
    digest: str


class ImportedFile(BaseModel):
    """One file of an import: identified by its content (`sha256`), not its name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sha256: str
    feed: str
    """What the file's content says it is (e.g. `binance-usdm` for a capture whose depth updates carry `pu`),
    empty when the format does not say: a stream never mixes files of two feeds."""
    records: int
    refused_rows: int
    streams: tuple[str, ...]


class FilesImported(EventBase):
    """One completed import into the session (stream `session`), written in the same transaction as its
    records: the session holds exactly the records of the files listed by these events, and an importer
    refuses a file whose sha256 is already listed (importing the same file twice stores nothing)."""

    type: Literal["session.files_imported"] = "session.files_imported"
    importer: str
    files: tuple[ImportedFile, ...]
