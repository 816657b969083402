"""The one settings model: read from the environment and secret files, validated with the variable named, and
the README's configuration table generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.settings import Settings, configuration_table

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_table_is_the_settings_model() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- settings:start -->\n", "<!-- settings:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == configuration_table()


def test_every_setting_is_documented() -> None:
    assert all(field.description for field in Settings.model_fields.values())


def test_environment_and_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CSE_PG_DSN", "postgresql+asyncpg://cse@db:5432/cse")
    monkeypatch.setenv("CSE_API_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CSE_OTLP_ENDPOINT", "")  # empty = unset, as compose files write it
    (tmp_path / "cse_pg_password").write_text("s3cret\n")
    settings = Settings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://cse:s3cret@db:5432/cse"
    assert settings.api_cors_origins == ("https://a.example", "https://b.example")
    assert settings.otlp_endpoint is None
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("CSE_PG_PASSWORD", "from-env")  # the environment wins over the file
    assert Settings(_secrets_dir=tmp_path).database_url.endswith("cse:from-env@db:5432/cse")  # type: ignore[call-arg]


def test_a_bad_value_stops_every_command_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CSE_TRACE_SAMPLE_RATIO", "2")
    assert main(["sessions"]) == 2
    err = capsys.readouterr().err
    assert "CSE_TRACE_SAMPLE_RATIO" in err and "Traceback" not in err
