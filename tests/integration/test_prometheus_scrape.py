"""The services as an operator runs them: `cse project --follow` on the real Kafka topics, scraped by the real
Prometheus (Debian's package, deploy/local/prometheus.sh) with the project's alert rules loaded; what it
projects equals the plain fold, records appended while it runs are projected too, every metric a dashboard
or alert queries is on its live /metrics page, and SIGTERM stops it cleanly. Rule and config files pass
`promtool`. Fails (never skips) when a server is unreachable."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adapters.sqlite_event_log import SqliteEventLog
from projections.schema import make_engine
from projections.testing import (
    actual_read_models,
    assert_matches_fold,
    build_sample_session,
    expected_read_models,
)
from streams.kafka_event_log import KafkaEventLog
from streams.record import record_session
from streams.topics import TopicConfig, Topics, create_topics
from tests.deploy_files import ROOT, alert_exprs, dashboard_exprs, exported_names, metric_names_in
from tests.service_process import (
    PROMETHEUS_URL,
    PrometheusTargets,
    ServiceProcess,
    free_port,
    http_get,
    prometheus_query,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def targets() -> Iterator[PrometheusTargets]:
    status, _ = http_get(f"{PROMETHEUS_URL}/-/ready")
    assert status == 200, "Prometheus not running: bash deploy/local/services.sh start"
    t = PrometheusTargets(f"it-{uuid.uuid4().hex[:10]}")
    yield t
    t.close()


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: deploy/local/prometheus.sh installs Debian's prometheus package"
    return path


def test_alert_rules_pass_promtool() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_exprs())} rules found" in result.stdout


@pytest.mark.parametrize("name", ["prometheus-compose.yml", "prometheus-swarm.yml"])
def test_prometheus_configs_pass_promtool(name: str, tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus" / name).read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # where compose and the stack mount it
    config["rule_files"] = [str(ROOT / "deploy/prometheus/alerts.yml")]
    (tmp_path / name).write_text(yaml.safe_dump(config))
    result = subprocess.run([_promtool(), "check", "config", str(tmp_path / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loaded_the_alert_rules() -> None:
    status, text = http_get(f"{PROMETHEUS_URL}/api/v1/rules")
    assert status == 200
    loaded = {rule["name"] for group in json.loads(text)["data"]["groups"] for rule in group["rules"]}
    expected = {rule["alert"] for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
                for rule in group["rules"]}  # fmt: skip
    assert expected <= loaded


def test_worker_and_projector_are_scraped_follow_the_log_and_stop_on_sigterm(
    kafka_bootstrap: str, targets: PrometheusTargets, tmp_path: Path
) -> None:
    prefix = f"cse-it-svc-{uuid.uuid4().hex[:10]}"
    created = create_topics(kafka_bootstrap, TopicConfig(prefix=prefix, partitions=3))
    assert set(created.values()) == {"created"}
    home = tmp_path / "home"
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        first = build_sample_session(log, "svc-1", orders=60)
        kafka = KafkaEventLog(kafka_bootstrap, Topics(prefix))
        env = {"CSE_HOME": str(home), "CSE_KAFKA_BOOTSTRAP": kafka_bootstrap, "CSE_WORKER_SESSION_TIMEOUT_S": "8"}
        worker = ServiceProcess("worker", ["worker", "--config", str(ROOT / "deploy/samples/spread-demo.toml"),
                                           "--prefix", prefix], env, tmp_path / "worker.log")  # fmt: skip
        worker.wait_healthy()
        inputs = record_session(log, kafka, "svc-1").inputs

        projector = ServiceProcess("projector", ["project", "--follow", "--source", "kafka", "--prefix", prefix,
                                                 "--target", "embedded", "--poll-interval", "0.5"],
                                   env, tmp_path / "projector.log")  # fmt: skip
        try:
            projector.wait_healthy()
            targets.register([worker, projector])
            selector = f'{{test="{targets.test_id}",projection="read_models"}}'

            def projected() -> float:
                result = prometheus_query(f"sum(cse_projection_records_total{selector})")
                return float(result[0]["value"][1]) if result else 0.0

            def fed() -> float:
                result = prometheus_query(f'sum(cse_worker_inputs_total{{test="{targets.test_id}"}})')
                return float(result[0]["value"][1]) if result else 0.0

            # Prometheus scraped both running services: the worker fed every market-data input of the
            # session to its kernels, the projector projected every record of the session (the worker's
            # derived session too: more than the session's own records)
            seen: list[float] = []
            wait_for("Prometheus to see svc-1 fed to the worker", lambda: seen.append(fed()) or seen[-1] == inputs,
                     timeout=180)  # fmt: skip
            wait_for("Prometheus to see svc-1 projected", lambda: projected() > first, timeout=180)
            assert {r["metric"]["service"] for r in prometheus_query(f'up{{test="{targets.test_id}"}} == 1')} == {
                "worker", "projector"}  # fmt: skip

            # appended while the services run: fed and projected too (they follow the log)
            before = projected()
            second = build_sample_session(log, "svc-2", orders=30, seed=11)
            more = record_session(log, kafka, "svc-2").inputs
            wait_for("svc-2 fed", lambda: seen.append(fed()) or seen[-1] == inputs + more, timeout=180)
            wait_for("svc-2 projected", lambda: projected() >= before + second, timeout=180)

            # every metric a dashboard or an alert queries is on the live pages
            queried = set().union(*(metric_names_in(e) for e in dashboard_exprs() + alert_exprs()))
            for service in (worker, projector):
                assert queried - exported_names(service.metrics()) - {"up"} == set(), service.name

            for service in (worker, projector):
                assert service.terminate() == 0, service.output()[-3000:]
            assert "SIGTERM received" in projector.output()
            lines = [json.loads(line) for line in projector.output().splitlines() if line.startswith("{")]
            assert any(line.get("session_id") == "svc-1" and line["service"] == "projector" for line in lines)
        finally:
            worker.kill()
            projector.kill()
        engine = make_engine(f"sqlite+aiosqlite:///{home / 'read_models.sqlite'}")

        async def check() -> None:
            try:
                for session in ("svc-1", "svc-2"):
                    assert_matches_fold(await actual_read_models(engine, session), expected_read_models(log, session))
            finally:
                await engine.dispose()

        asyncio.run(check())


def test_api_service_times_requests_and_stops_on_sigterm(targets: PrometheusTargets, tmp_path: Path) -> None:
    port = free_port()
    api = ServiceProcess("api", ["serve", "--target", "embedded", "--port", str(port)],
                         {"CSE_HOME": str(tmp_path / "home")}, tmp_path / "api.log")  # fmt: skip
    try:
        api.wait_healthy()
        targets.register([api])
        wait_for("the API", lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                         data=json.dumps({"query": "{ __typename }"}).encode(),
                                         headers={"content-type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        selector = f'{{test="{targets.test_id}",route="/graphql",status="2xx"}}'

        def graphql_requests() -> bool:
            result = prometheus_query(f"sum(cse_api_request_duration_seconds_count{selector})")
            return bool(result) and float(result[0]["value"][1]) >= 1

        wait_for("Prometheus to see the GraphQL request", graphql_requests, timeout=60)
        assert 'cse_api_subscriptions{subscription="live"} 0.0' in api.metrics()
        assert api.terminate() == 0, api.output()[-3000:]
    finally:
        api.kill()
