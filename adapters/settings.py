"""Configuration from environment variables, with the defaults documented in the README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(_env("CSE_HOME", "var")))
    kafka_bootstrap: str = field(default_factory=lambda: _env("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    pg_dsn: str = field(
        default_factory=lambda: _env("CSE_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:55432/cse")
    )
    influx_url: str = field(default_factory=lambda: _env("CSE_INFLUX_URL", "http://127.0.0.1:8086"))
    influx_db: str = field(default_factory=lambda: _env("CSE_INFLUX_DB", "cse"))
    api_host: str = field(default_factory=lambda: _env("CSE_API_HOST", "127.0.0.1"))
    api_port: int = field(default_factory=lambda: int(_env("CSE_API_PORT", "8000")))
    api_cors_origins: tuple[str, ...] = field(
        default_factory=lambda: tuple(o.strip() for o in _env("CSE_API_CORS_ORIGINS", "").split(",") if o.strip())
    )

    @property
    def event_log_path(self) -> Path:
        return Path(_env("CSE_EVENT_LOG", str(self.home / "events.sqlite")))

    @property
    def api_keys_path(self) -> Path:
        return Path(_env("CSE_API_KEYS", str(self.home / "api_keys.json")))

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"
