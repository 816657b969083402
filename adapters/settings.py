"""The configuration of every `cse` command: one typed, validated settings object, read once at the entry
point (`adapters.entrypoints.cli.main`) from `CSE_*` environment variables and secret files, then passed to
the parts that need it. Nothing else reads the environment.

Secrets (database password, exchange keys; the `SecretStr` fields) may also come from a file: named by
`CSE_<NAME>_FILE` (e.g. `CSE_BINANCE_API_KEY_FILE=/run/secrets/binance_key`), or named like the variable in
lower case in `/run/secrets/` (Docker/Swarm secrets), e.g. `/run/secrets/cse_pg_password`. The variable
itself wins over a secrets-directory file; the variable and its `_FILE` together are refused (which one was
meant?). A secret's value never appears in a repr, a log line or an error message.
The README's configuration table is generated from this model (`configuration_table`), and a test keeps it
in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

SECRETS_DIR = Path("/run/secrets")
EXCHANGES = ("binance", "coinbase", "kraken", "bybit")


class SettingsError(Exception):
    """A configuration the settings model cannot even read (its message names the variable, never a value)."""


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation in (SecretStr, SecretStr | None)


class SecretFileVariables(PydanticBaseSettingsSource):
    """`CSE_<NAME>_FILE=PATH` for every secret setting: the value is the file's content (trailing newline off).

    Looks the variables up in the environment source's variables (lower-cased names), because that source
    ignores the ones the model does not declare, and the model declares each secret once, not twice."""

    def __init__(self, settings_cls: type[BaseSettings], environment: Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._environment = environment

    def _variable(self, name: str) -> str:
        return (self._environment.get(name.lower()) or "").strip()

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            variable = f"CSE_{name.upper()}_FILE"
            path = self._variable(variable)
            if not _is_secret(field) or not path:
                continue
            if self._variable(variable.removesuffix("_FILE")):
                raise SettingsError(f"{variable.removesuffix('_FILE')} and {variable} are both set: set one of them")
            try:
                values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise SettingsError(f"{variable}: cannot read secret file {path}: {reason}") from None
        return values


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
    core: Literal["compiled", "reference"] = Field("compiled", description="market core of `cse backtest`/`replay`/`demo`/`worker`: `compiled` the Rust extension `cse_core` (an error when it is not built, never a fall back), `reference` the pure-Python core; `--reference` skips the core: every input through the kernel")
    catalog: Path | None = Field(None, description="folder of the columnar market-data files (Arrow IPC, named by sha256); default `catalog` beside the event log")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    topic_prefix: str = Field("cse", pattern=r"^[A-Za-z0-9._-]+$",
                              description="prefix of every Kafka topic (`cse.md`, `cse.orders`, ... see `docs/topics.md`)")  # fmt: skip
    kafka_partitions: int = Field(6, ge=1, description="partitions per topic `cse topics create` creates (workers scale up to this)")
    kafka_replication: int = Field(1, ge=1, description="replication factor of the topics `cse topics create` creates")
    kafka_retention_ms: int = Field(-1, ge=-1, description="retention of the event topics (-1: forever, they are the log)")
    worker_session_timeout_s: float | None = Field(None, gt=0, description="consumer session timeout of `cse worker` (Faust's default 60 s; lower it to fail over faster)")
    worker_snapshot_every: int = Field(5000, ge=1, description="inputs of a partition between two kernel snapshots of `cse worker` (at most this many are re-run after a restart)")
    worker_batch_size: int = Field(500, ge=1, description="md messages `cse worker` feeds as one batch (through the market core) before it awaits the batch's outputs and acks its inputs; the outputs are the same for any size")
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
    api_base: Annotated[tuple[str, ...], NoDecode] = Field((), description="exchanges' hosts overridden, comma-separated `EXCHANGE=URL` (`cse record --api-base`; docs/recording.md)")
    binance_api_key: SecretStr | None = Field(None, description="Binance API key (trading, private streams); unset: market data only")
    binance_api_secret: SecretStr | None = Field(None, description="Binance API secret (set with the key)")
    binance_api_passphrase: SecretStr | None = Field(None, description="Binance API passphrase (ccxt `password`), only for a key that has one")
    coinbase_api_key: SecretStr | None = Field(None, description="Coinbase Advanced Trade API key name; unset: market data only")
    coinbase_api_secret: SecretStr | None = Field(None, description="Coinbase Advanced Trade API private key (set with the key)")
    coinbase_api_passphrase: SecretStr | None = Field(None, description="Coinbase API passphrase (ccxt `password`), only for a key that has one")
    kraken_api_key: SecretStr | None = Field(None, description="Kraken API key; unset: market data only")
    kraken_api_secret: SecretStr | None = Field(None, description="Kraken API private key (set with the key)")
    kraken_api_passphrase: SecretStr | None = Field(None, description="Kraken API passphrase (ccxt `password`), only for a key that has one")
    bybit_api_key: SecretStr | None = Field(None, description="Bybit API key; unset: market data only")
    bybit_api_secret: SecretStr | None = Field(None, description="Bybit API secret (set with the key)")
    bybit_api_passphrase: SecretStr | None = Field(None, description="Bybit API passphrase (ccxt `password`), only for a key that has one")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # earlier wins: arguments, the variable, its _FILE, the secrets directory
        assert isinstance(env_settings, EnvSettingsSource)
        file_variables = SecretFileVariables(settings_cls, env_settings.env_vars)
        return init_settings, env_settings, file_variables, dotenv_settings, file_secret_settings

    @field_validator("api_cors_origins", "api_base", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return tuple(o.strip() for o in value.split(",") if o.strip()) if isinstance(value, str) else value

    @field_validator("event_log", "catalog", "api_keys", "otlp_endpoint", "influx_shard_duration", "worker_session_timeout_s", "pg_password",
                     *(f"{e}_api_{part}" for e in EXCHANGES for part in ("key", "secret", "passphrase")), mode="before")  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def is_secret(cls, variable: str) -> bool:
        """Whether `CSE_<NAME>` is a secret setting, or not one at all (a model-wide error: show nothing)."""
        field = cls.model_fields.get(variable.removeprefix("CSE_").lower())
        return field is None or _is_secret(field)

    @property
    def event_log_path(self) -> Path:
        return self.event_log if self.event_log is not None else self.home / "events.sqlite"

    @property
    def catalog_path(self) -> Path:
        return self.catalog if self.catalog is not None else self.event_log_path.parent / "catalog"

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
