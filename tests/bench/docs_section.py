"""Writes a benchmark's results into its own marked section of docs/benchmarks.md (the rest is left alone)."""

from __future__ import annotations

from pathlib import Path


def write_section(docs: Path, text: str, start: str, end: str, heading: str) -> None:
    """Replace the text between `start` and `end` (markers included in `text`), or append it under `heading`."""
    doc = docs.read_text()
    if start in doc:
        doc = doc[: doc.index(start)] + text + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip("\n") + f"\n\n## {heading}\n\n" + text + "\n"
    docs.write_text(doc)
