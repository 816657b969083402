"""The configuration of every `cse` command: one typed, validated settings object, read once at the entry
point (`adapters.entrypoints.cli.main`) from `CSE_*` environment variables and secret files, then passed to
the parts that need it. Nothing else reads the environment.

Secrets (database password, exchange keys) may come from files named like the variable in lower case in
`/run/secrets/` (Docker/Swarm secrets), e.g. `/run/secrets/cse_pg_password`; an environment variable wins.
The README's configuration table is generated from this model (`configuration_table`), and a test keeps it
in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

SECRETS_DIR = Path("/run/secrets")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CSE_",
        frozen=True,
        extra="ignore",
        secrets_dir=str(SECRETS_DIR) if SECRETS_DIR.is_dir() else None,
        validate_default=True,
    )

    home: Path = Field(Path("var"), description="working directory for the embedded log, reports and read models")
    event_log: Path | None = Field(None, description="the embedded event log (SQLite, WAL); default `$CSE_HOME/events.sqlite`")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    topic_prefix: str = Field("cse", pattern=r"^[A-Za-z0-9._-]+$",
                              description="prefix of every Kafka topic (`cse.md`, `cse.orders`, ... see `docs/topics.md`)")  # fmt: skip
    kafka_partitions: int = Field(6, ge=1, description="partitions per topic `cse topics create` creates (workers scale up to this)")
    kafka_replication: int = Field(1, ge=1, description="replication factor of the topics `cse topics create` creates")
    kafka_retention_ms: int = Field(-1, ge=-1, description="retention of the event topics (-1: forever, they are the log)")
    worker_session_timeout_s: float | None = Field(None, gt=0, description="consumer session timeout of `cse worker` (Faust's default 60 s; lower it to fail over faster)")
    worker_snapshot_every: int = Field(5000, ge=1, description="inputs of a partition between two kernel snapshots of `cse worker` (at most this many are re-run after a restart)")
    worker_batch_size: int = Field(500, ge=1, description="md messages `cse worker` feeds as one batch before it awaits the batch's outputs and acks its inputs")
    worker_batch_within_s: float = Field(0.005, gt=0, description="longest wait of `cse worker` for a batch to fill (a message waits at most this long at low rates)")
    pg_dsn: str = Field("postgresql+asyncpg://postgres@127.0.0.1:55432/cse", description="PostgreSQL read models (SQLAlchemy URL, asyncpg)")
    pg_password: SecretStr | None = Field(None, description="PostgreSQL password, if not in the DSN (secret file `cse_pg_password`)")
    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB 1.x HTTP API")
    influx_db: str = Field("cse", description="InfluxDB database of the time series")
    influx_rp: str = Field("cse", description="retention policy the time-series projector creates and uses")
    influx_retention: str = Field("30d", description="duration of that retention policy (`INF` keeps forever)")
    influx_shard_duration: str | None = Field(None, description="shard group duration of that retention policy (InfluxDB's default if unset)")
    influx_batch_points: int = Field(20_000, ge=1, description="points per InfluxDB write")
    influx_max_in_flight: int = Field(3, ge=1, description="InfluxDB writes in flight at once")
    metrics_host: str = Field("127.0.0.1", description="address of a service's `/metrics` and `/health` server (`0.0.0.0` in containers)")
    metrics_port: int = Field(9100, ge=0, le=65535, description="port of that server (0: any free port, logged)")
    log_format: Literal["json", "text"] = Field("json", description="log lines of the services: JSON objects (trace, session, correlation ids) or text")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level of the services")
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP collector for traces, e.g. `http://otel-collector:4318`; unset: tracing off")
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of traces kept when tracing is on (decided on the trace id, so every hop agrees)")
    api_host: str = Field("127.0.0.1", description="listen address of `cse serve`")
    api_port: int = Field(8000, ge=1, le=65535, description="port of `cse serve`")
    api_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field((), description="origins allowed to call the API from a browser, comma-separated (none: same origin only)")
    api_keys: Path | None = Field(None, description="API keys file (hashed); default `$CSE_HOME/api_keys.json`")

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return tuple(o.strip() for o in value.split(",") if o.strip()) if isinstance(value, str) else value

    @field_validator("event_log", "api_keys", "otlp_endpoint", "influx_shard_duration", "worker_session_timeout_s", "pg_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def event_log_path(self) -> Path:
        return self.event_log if self.event_log is not None else self.home / "events.sqlite"

    @property
    def api_keys_path(self) -> Path:
        return self.api_keys if self.api_keys is not None else self.home / "api_keys.json"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def database_url(self) -> str:
        """`pg_dsn` with `pg_password` filled in (the DSN's own password wins)."""
        url = make_url(self.pg_dsn)
        if self.pg_password is not None and url.password is None:
            url = url.set(password=self.pg_password.get_secret_value())
        return url.render_as_string(hide_password=False)


def configuration_table() -> str:
    """The README's configuration table, one row per setting."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        rows.append(f"| `CSE_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows) + "\n"
