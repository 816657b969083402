"""docs/events/schemas mirrors the catalogue: one `<type>.json` per event type, byte for byte as generated
by `python -m application.schema_dump docs/events/schemas`, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from application.schema_dump import render
from domain.events import EVENT_TYPES, json_schemas

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"
DOCS = SCHEMAS.parent
REGENERATE = "regenerate with: python -m application.schema_dump docs/events/schemas"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_file_matches_the_code(event_type: str) -> None:
    path = SCHEMAS / f"{event_type}.json"
    assert path.exists(), f"{path} missing; {REGENERATE}"
    text = path.read_text(encoding="utf-8")
    schema = json_schemas()[event_type]
    assert json.loads(text) == schema, f"{path.name} is out of date; {REGENERATE}"
    assert text == render(schema), f"{path.name} is not in canonical form; {REGENERATE}"


def test_no_extra_files() -> None:
    present = sorted(p.name for p in SCHEMAS.iterdir())
    assert present == sorted(f"{t}.json" for t in json_schemas()), REGENERATE


def test_every_event_type_is_documented() -> None:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))
    missing = [t for t in sorted(EVENT_TYPES) if f"`{t}`" not in pages]
    assert missing == [], f"event types without a docs/events page entry: {missing}"
