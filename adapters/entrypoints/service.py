"""What every long-running `cse` service shares: JSON logs, tracing from the settings, the `/metrics` +
`/health` server, and a clean stop on SIGTERM/SIGINT (the current unit of work finishes, then the service
closes its clients and exits 0)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import disable_created_metrics

from adapters.entrypoints.commands import UserError
from adapters.observability.http import Health, OpsServer
from adapters.observability.logs import configure_logging
from adapters.observability.metrics import BUILD_INFO
from adapters.observability.tracing import Tracing
from adapters.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Service:
    name: str
    settings: Settings
    health: Health
    tracing: Tracing
    server: OpsServer
    stop: asyncio.Event | None = None

    def install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """SIGTERM/SIGINT set `stop` (and /health turns 503 so a load balancer stops sending work)."""
        self.stop = asyncio.Event()

        def request_stop(signum: int) -> None:
            log.info(
                "%s: %s received, stopping after the current batch", self.name, signal.Signals(signum).name
            )
            self.health.stopping = True
            assert self.stop is not None
            self.stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, request_stop, signum)
        return self.stop


@contextlib.contextmanager
def service(name: str, settings: Settings, version: str,
            checks: dict[str, Callable[[], bool]] | None = None) -> Iterator[Service]:  # fmt: skip
    configure_logging(name, settings.log_level, json_logs=settings.log_format == "json")
    disable_created_metrics()  # no `*_created` twin of every counter: half the series, nothing lost
    BUILD_INFO.info({"service": name, "version": version})
    tracing = Tracing.configure(name, settings.otlp_endpoint, settings.trace_sample_ratio)
    health = Health(name, dict(checks or {}))
    try:
        server = OpsServer(health, settings.metrics_host, settings.metrics_port).start()
    except OSError as exc:  # e.g. a second service on this host with the same port
        raise UserError(f"{name}: cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port}"
                        f" ({exc.strerror or exc}); set CSE_METRICS_PORT to a free port, or 0 for any") from exc
    log.info("%s %s started: metrics on http://%s:%d/metrics, tracing %s", name, version, server.host,
             server.port, "on" if tracing.enabled else "off")  # fmt: skip
    try:
        yield Service(name, settings, health, tracing, server)
    finally:
        health.stopping = True
        tracing.shutdown()
        server.stop()
        log.info("%s stopped", name)
