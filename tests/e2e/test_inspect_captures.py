"""The reconstructed books against Binance's own bookTicker, on every shared capture, through the real commands.

Each venue folder of `../shared/data/hftbacktest/` (spot, usdm, cm) is imported with `cse import`, all its days
in time order into one session, then `cse inspect --json` must show, for every book, 100% agreement on the
tickers whose update id the book applied exactly, and several hundred such tickers. Missing data fails the
test, it never skips (`CSE_SHARED_DATA` points elsewhere when the checkout is not beside `shared/`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.cli import main

pytestmark = pytest.mark.e2e

DATA = Path(os.environ.get("CSE_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
BINANCE = DATA / "hftbacktest"
VENUE_FOLDERS = ("spot", "usdm", "cm")
MIN_COMPARED = 300


def captures() -> dict[str, list[Path]]:
    found = {folder: sorted((BINANCE / folder).glob("*.gz")) for folder in VENUE_FOLDERS}
    assert all(found.values()), f"Binance captures missing under {BINANCE}: {found}"
    return found


@pytest.fixture(scope="module")
def inspected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    home = tmp_path_factory.mktemp("inspect")
    reports: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(home))
        patch.delenv("CSE_EVENT_LOG", raising=False)
        for folder, paths in captures().items():
            assert main(["import", "--session", folder, *map(str, paths)]) == 0
            reports[folder] = _inspect_json(folder)
    return reports


def _inspect_json(session: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["inspect", session, "--json"]) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@pytest.mark.parametrize("folder", VENUE_FOLDERS)
def test_book_agrees_with_every_comparable_ticker(inspected: dict[str, dict[str, Any]], folder: str) -> None:
    streams = [s for s in inspected[folder]["streams"] if s["stream"].startswith("md.")]
    assert len(streams) == 1
    (book,) = streams[0]["books"]
    tickers = book["tickers"]
    assert tickers["compared"] >= MIN_COMPARED, tickers
    assert tickers["agreed"] == tickers["compared"] and tickers["disagreed"] == 0, tickers
    assert tickers["first_disagreement"] is None
    assert tickers["compared"] + tickers["not_comparable"] == tickers["tickers"]
    assert book["snapshots"] >= 1 and book["applied"] > 0 and book["in_sync_at_end"]
    # the shared captures have no sequence gaps: every delta after the snapshot was applied
    assert (book["gaps"], book["crossed"], book["invalid"]) == (0, 0, 0)


def test_two_clocks_are_reported_apart(inspected: dict[str, dict[str, Any]]) -> None:
    usdm = next(s for s in inspected["usdm"]["streams"] if s["stream"].startswith("md."))
    assert set(usdm["latency"]) == {"market.book_delta", "market.quote", "market.trade"}
    assert any("differ by more than a second" in note for note in usdm["notes"])
    assert usdm["counts"]["market.book_snapshot"] == 1 and usdm["rates_per_second"]["market.quote"] > 0


def test_unknown_session_exits_non_zero(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CSE_HOME", str(tmp_path))
        assert main(["inspect", "no-such-session"]) != 0
