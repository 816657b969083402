"""The small HTTP server every long-running `cse` service runs beside its work: `GET /metrics` (Prometheus
text format) and `GET /health` (200 with a JSON body while the service is healthy, 503 otherwise).

A daemon thread with the standard library's server: nothing to schedule on the service's event loop, and a
scrape keeps answering while the loop is busy with a long re-run.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


@dataclass
class Health:
    """What `/health` reports: healthy until a check fails or the service says it is stopping."""

    service: str
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    stopping: bool = False

    def report(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, bool] = {}
        for name, check in sorted(self.checks.items()):
            try:
                results[name] = bool(check())
            except Exception:  # a check that raises is a failing check, never a crashed endpoint
                log.exception("health check %s failed", name)
                results[name] = False
        ok = not self.stopping and all(results.values())
        status = "stopping" if self.stopping else ("ok" if ok else "failing")
        return ok, {"service": self.service, "status": status, "checks": results}


class OpsServer:
    """`/metrics` and `/health` on (host, port); port 0 picks a free one (`self.port` tells which)."""

    def __init__(self, health: Health, host: str = "0.0.0.0", port: int = 9100,
                 registry: CollectorRegistry = REGISTRY) -> None:  # fmt: skip
        ops = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    ops._send(self, 200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in ("/health", "/healthz"):
                    ok, body = health.report()
                    ops._send(self, 200 if ok else 503, "application/json", json.dumps(body).encode())
                else:
                    ops._send(self, 404, "text/plain", b"not found: try /metrics or /health\n")

            def log_message(
                self, format: str, *args: Any
            ) -> None:  # scrapes every few seconds: no access log
                return

        self.health = health
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[0], int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="cse-ops-http", daemon=True)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> OpsServer:
        self._thread.start()
        log.info("metrics and health on http://%s:%d/metrics and /health", self.host, self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
