"""The layering of the design card, checked on the source: the domain stays pure, the application stays
free of adapters, and the outer packages (adapters, projections, streams) point inward, never at each other;
only the composition root (`adapters/entrypoints/`) wires them all. A violation here is how a replay stops
being exact, so it fails the build."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OURS = {"domain", "application", "adapters", "projections", "streams"}
# Modules whose use inside a decider would make it depend on the machine, the wall clock or chance.
IMPURE = {"time", "datetime", "random", "os", "socket", "asyncio", "threading", "secrets", "sqlite3", "subprocess"}


def _imports(package: str) -> list[tuple[Path, str]]:
    """Every absolute import of the package's modules, at any depth (imports inside functions too)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.extend((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.module))
    return found


def test_domain_imports_nothing_of_ours_but_itself_and_nothing_impure() -> None:
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("domain")
           if (m.split(".")[0] in OURS - {"domain"}) or m.split(".")[0] in IMPURE]  # fmt: skip
    assert bad == []


def test_application_imports_only_the_domain_of_ours() -> None:
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("application")
           if m.split(".")[0] in OURS - {"domain", "application"}]  # fmt: skip
    assert bad == []


def test_no_float_conversion_of_money_in_the_domain() -> None:
    calls = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "domain").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
    ]
    assert calls == []


@pytest.mark.parametrize("package", ["projections", "streams"])
def test_projections_and_streams_import_only_the_core_and_themselves(package: str) -> None:
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports(package)
           if m.split(".")[0] in OURS - {"domain", "application", package}]  # fmt: skip
    assert bad == []


def test_only_the_composition_root_imports_projections_and_streams_from_adapters() -> None:
    root = ROOT / "adapters" / "entrypoints"
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("adapters")
           if root not in p.parents and m.split(".")[0] in {"projections", "streams"}]  # fmt: skip
    assert bad == []


def test_only_the_entry_point_reads_the_environment() -> None:
    """Configuration is read once (`adapters/settings.py`, by `cse`'s main) and passed in."""
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in ("application", "adapters", "projections", "streams")
        for path in (ROOT / package).rglob("*.py")
        if "os.environ" in path.read_text() or "getenv(" in path.read_text()
    )
    assert readers == []
