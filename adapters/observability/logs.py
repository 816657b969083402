"""Structured JSON logs: one object per line with time (UTC), level, logger, message, the current trace and
span ids (OpenTelemetry), and the session and correlation ids of the work in hand (`log_context`)."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

_CONTEXT: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "cse_log_context", default=()
)
# attributes every LogRecord has, and uvicorn's terminal-only copy of the message
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName",
                                                                          "color_message"}  # fmt: skip


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Fields (e.g. session_id, correlation_id) added to every log line written inside the block."""
    merged = dict(_CONTEXT.get()) | {k: v for k, v in fields.items() if v is not None}
    token = _CONTEXT.set(tuple(merged.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "cse") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            body["trace_id"] = f"{context.trace_id:032x}"
            body["span_id"] = f"{context.span_id:016x}"
        body.update(dict(_CONTEXT.get()))
        body.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        )
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(
    service: str, level: str = "info", json_logs: bool = True, stream: TextIO | None = None
) -> None:
    """Root logging for a service process: JSON lines (or plain text for a terminal) on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _quiet_credential_carriers()


# ccxt logs every request and response with its headers and signed body at DEBUG: API keys and
# signatures. Those loggers never go below INFO, whatever level a service runs at.
_CREDENTIAL_CARRIERS = ("ccxt",)


def _quiet_credential_carriers() -> None:
    for name in _CREDENTIAL_CARRIERS:
        logging.getLogger(name).setLevel(logging.INFO)


def logging_config(service: str, level: str = "info", json_logs: bool = True) -> dict[str, Any]:
    """The same set-up as `configure_logging`, as a `logging.config.dictConfig` dict (for Faust's worker,
    which configures logging itself)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service}
        if json_logs
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cse": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "cse", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": "INFO"} for name in _CREDENTIAL_CARRIERS},
    }
