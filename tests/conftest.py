"""Every test belongs to one group, named after its folder: unit (no servers), integration (real servers), e2e."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GROUPS = ("unit", "integration", "e2e")

# Every `cse` service a test starts (trade, record, project --follow, ...) serves /metrics on any free port
# unless the test names one: a fixed default port would make a test depend on what else runs on the host.
os.environ.setdefault("CSE_METRICS_PORT", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = Path(str(item.fspath)).parent.name
        if group in GROUPS and not any(item.iter_markers(name=g) for g in GROUPS):
            item.add_marker(getattr(pytest.mark, group))
