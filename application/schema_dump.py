"""Dev tool: write one JSON Schema file per event type, `<type>.json`, to a folder (docs/events/schemas).

    python -m application.schema_dump docs/events/schemas

Files are `json.dumps(schema, sort_keys=True, indent=2)` plus a newline; files of types that no longer
exist are removed, so the folder always mirrors `domain.events.json_schemas()`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from domain.events import json_schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, indent=2) + "\n"


def dump(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    schemas = json_schemas()
    written = []
    for event_type in sorted(schemas):
        path = folder / f"{event_type}.json"
        path.write_text(render(schemas[event_type]), encoding="utf-8", newline="\n")
        written.append(path)
    expected = {p.name for p in written}
    for stale in sorted(folder.glob("*.json")):
        if stale.name not in expected:
            stale.unlink()
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m application.schema_dump <folder>", file=sys.stderr)
        return 2
    for path in dump(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
