"""The recorded Binance messages the local exchange plays: hftbacktest captures, one
`<receive_time_ns> <raw JSON>` line each (`/work/shared/data/hftbacktest/README`), and the exchange's true
book as the played depth updates move it (what a REST depth snapshot returns at that moment)."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

SHARED_DATA = Path(os.environ.get("CSE_SHARED_DATA", "/work/shared/data"))
SPOT_CAPTURE = SHARED_DATA / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
USDM_CAPTURE = SHARED_DATA / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"
COINM_CAPTURE = SHARED_DATA / "hftbacktest" / "cm" / "btcusd_perp_20240808.gz"


@dataclass(frozen=True, slots=True)
class CaptureLine:
    receive_ns: int
    text: str
    """The raw JSON exactly as recorded."""
    message: dict[str, Any]

    @property
    def is_snapshot(self) -> bool:
        return "lastUpdateId" in self.message

    @property
    def kind(self) -> str:
        """depth, bookTicker, trade, or snapshot."""
        if self.is_snapshot:
            return "snapshot"
        kind = self.message["stream"].partition("@")[2]
        return "depth" if kind.startswith("depth") else kind


def read_capture(path: Path, limit: int | None = None) -> list[CaptureLine]:
    """The first `limit` lines (all when None) of a capture."""
    lines = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            head, _, body = line.rstrip("\n").partition(" ")
            lines.append(CaptureLine(int(head), body, json.loads(body)))
            if limit is not None and len(lines) >= limit:
                break
    return lines


@dataclass
class TrueBook:
    """The exchange's own book: price -> (price text, quantity text) per side, and the last update id."""

    bids: dict[Decimal, tuple[str, str]] = field(default_factory=dict)
    asks: dict[Decimal, tuple[str, str]] = field(default_factory=dict)
    last_update_id: int = 0
    ready: bool = False

    def reset(self, snapshot: dict[str, Any]) -> None:
        self.bids = {Decimal(p): (p, q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): (p, q) for p, q in snapshot["asks"]}
        self.last_update_id = snapshot["lastUpdateId"]
        self.ready = True

    def apply(self, delta: dict[str, Any]) -> bool:
        """Apply a Binance depth update if it is newer than the book; whether it was."""
        if not self.ready or delta["u"] <= self.last_update_id:
            return False
        for levels, side in ((delta["b"], self.bids), (delta["a"], self.asks)):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = (p, q)
        self.last_update_id = delta["u"]
        return True

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The best `n` levels as texts: (bids descending, asks ascending)."""
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:n]]
        asks = [self.asks[p] for p in sorted(self.asks)[:n]]
        return bids, asks
