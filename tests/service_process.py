"""Long-running `cse` services as real processes in tests: started with their own /metrics port, waited for
on /health, registered with the local Prometheus (file service discovery, deploy/local/prometheus.sh), and
stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_URL = os.environ.get("CSE_PROMETHEUS_URL", "http://127.0.0.1:9090")
PROM_TARGETS = Path(os.environ.get("CSE_PROM_TARGETS", "/tmp/cse-services/prometheus-targets"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last probe: {last!r})")


class ServiceProcess:
    """`cse ARGS...` with CSE_METRICS_PORT set; its output goes to `log_path`."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "CSE_METRICS_PORT": str(self.port),
                    "CSE_METRICS_HOST": "127.0.0.1", **env}  # fmt: skip
        self._log = log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "adapters.entrypoints.cli", *args], cwd=ROOT,
                                        env=full_env, stdout=self._log, stderr=subprocess.STDOUT)  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 120.0) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.output()[-3000:]}")
            return http_get(f"{self.url}/health")[0] == 200

        wait_for(f"{self.name} /health", healthy, timeout)

    def metrics(self) -> str:
        status, text = http_get(f"{self.url}/metrics")
        assert status == 200
        return text

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the exit code of a clean shutdown."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


class PrometheusTargets:
    """A file of scrape targets for the local Prometheus; removed on close."""

    def __init__(self, test_id: str) -> None:
        self.test_id = test_id
        PROM_TARGETS.mkdir(parents=True, exist_ok=True)
        self.path = PROM_TARGETS / f"{test_id}.json"

    def register(self, services: list[ServiceProcess]) -> None:
        groups = [{"targets": [f"127.0.0.1:{s.port}"], "labels": {"service": s.name, "test": self.test_id}}
                  for s in services]  # fmt: skip
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.path)  # Prometheus must never read a half-written file

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def prometheus_query(expr: str) -> list[dict[str, Any]]:
    status, text = http_get(f"{PROMETHEUS_URL}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert status == 200, text
    body = json.loads(text)
    assert body["status"] == "success", body
    return list(body["data"]["result"])
