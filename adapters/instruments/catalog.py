"""The instrument catalog: specification files (TOML, layout in `specs.toml`) -> InstrumentDefined events.

The shipped `specs.toml` is always read; a user's files (`cse import --instruments FILE`) are read after it
and replace its entries for the same (venue, instrument). A file that cannot be read, an entry with a missing
or unknown field, a float amount or an impossible value is refused with the file and entry named; a symbol no
file specifies is refused when the importer meets it (`UnknownInstrument`), never guessed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.events import Envelope, InstrumentDefined

SHIPPED_SPECS = Path(__file__).with_name("specs.toml")
_FIELDS = tuple(
    name for name in InstrumentDefined.model_fields if name not in ("type", "schema_version", "envelope")
)
_POSITIVE = ("contract_size", "tick_size", "lot_size")
_NON_NEGATIVE = ("min_notional", "taker_fee_bps")  # a maker fee may be negative: a rebate
_PLACEHOLDER = Envelope(
    event_id="00000000-0000-0000-0000-000000000000", session_id="-", sequence=0, event_time_ns=0,
    ingest_time_ns=0, source="catalog",
)  # fmt: skip


class SpecificationFileError(ValueError):
    """A specification file is unreadable or holds an invalid entry."""


class UnknownInstrument(ValueError):
    """No specification file specifies an instrument the importer met."""


@dataclass(frozen=True, slots=True)
class _Entry:
    fields: Mapping[str, Any]
    file: str


class InstrumentCatalog:
    def __init__(self, entries: Mapping[tuple[str, str], _Entry], files: tuple[str, ...]) -> None:
        self._entries = entries
        self.files = files

    def definition(
        self, venue: str, instrument: str, data_file: str
    ) -> Callable[[Envelope], InstrumentDefined]:
        """Builds the InstrumentDefined of (venue, instrument); raises UnknownInstrument naming the data file."""
        entry = self._entries.get((venue, instrument))
        if entry is None:
            raise UnknownInstrument(
                f"{data_file}: no specification for instrument {instrument!r} on venue {venue!r} in "
                f"{', '.join(self.files)}; add an [[instrument]] entry for it to a file given with "
                "`cse import --instruments FILE` (layout: the shipped specs.toml)"
            )
        return lambda envelope: InstrumentDefined(envelope=envelope, **entry.fields)


def load_catalog(extra: Iterable[Path] = ()) -> InstrumentCatalog:
    """The shipped specifications, then each of `extra` in order (later entries replace earlier ones)."""
    entries: dict[tuple[str, str], _Entry] = {}
    files = [SHIPPED_SPECS, *extra]
    for path in files:
        for fields in _read(path):
            entries[(fields["venue"], fields["instrument"])] = _Entry(fields, str(path))
    return InstrumentCatalog(entries, tuple(str(p) for p in files))


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            document = tomllib.load(fh)
    except OSError as exc:
        raise SpecificationFileError(
            f"{path}: cannot read the instrument specifications: {exc.strerror}"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecificationFileError(f"{path}: not valid TOML: {exc}") from exc
    raw = document.get("instrument")
    if not isinstance(raw, list) or not raw:
        raise SpecificationFileError(f"{path}: no [[instrument]] entries")
    return [_validated(path, index, entry) for index, entry in enumerate(raw, 1)]


def _validated(path: Path, index: int, entry: Any) -> dict[str, Any]:
    where = f"{path}: [[instrument]] #{index}"
    if not isinstance(entry, dict):
        raise SpecificationFileError(f"{where}: not a table")
    name = f" ({entry.get('venue')}/{entry.get('instrument')})"
    unknown = sorted(set(entry) - set(_FIELDS) - {"source"})
    missing = [f for f in (*_FIELDS, "source") if f not in entry]
    if unknown or missing:
        raise SpecificationFileError(f"{where}{name}: missing fields {missing}, unknown fields {unknown}")
    if not str(entry["source"]).strip():
        raise SpecificationFileError(f"{where}{name}: `source` must say where the numbers come from")
    floats = [f for f in _FIELDS if isinstance(entry[f], float)]
    if floats:
        raise SpecificationFileError(
            f'{where}{name}: {floats} must be decimal strings ("0.01"), not TOML floats'
        )
    fields = {f: entry[f] for f in _FIELDS}
    try:
        spec = InstrumentDefined(envelope=_PLACEHOLDER, **fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise SpecificationFileError(f"{where}{name}: {problems}") from exc
    bad = [f for f in _POSITIVE if getattr(spec, f) <= 0] + [f for f in _NON_NEGATIVE if getattr(spec, f) < 0]
    if bad:
        raise SpecificationFileError(
            f"{where}{name}: {bad} must be positive (fees, min_notional: not negative)"
        )
    if spec.kind == "inverse" and spec.settlement != spec.base:
        raise SpecificationFileError(f"{where}{name}: an inverse contract settles in its base coin")
    if spec.kind == "spot" and (spec.settlement != spec.quote or spec.contract_size != 1):
        raise SpecificationFileError(
            f"{where}{name}: spot settles in the quote currency with contract_size 1"
        )
    return fields
