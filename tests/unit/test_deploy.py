"""The deployment files: the compose and swarm stack files validate against the Compose Specification's
JSON schema (deploy/schema/), every `cse` service runs a subcommand that exists with the flags it uses, the
stack carries what production needs, and every metric a dashboard or alert queries is one the code defines
(tests/integration/test_prometheus_scrape.py checks the same against a live scrape)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from adapters.entrypoints.cli import build_parser
from tests.deploy_files import ROOT, alert_exprs, dashboard_exprs, exported_names, metric_names_in

pytestmark = pytest.mark.unit

COMPOSE_FILES = ("docker-compose.yml", "swarm-stack.yml")
SCHEMA = json.loads((ROOT / "deploy/schema/compose-spec.json").read_text())


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def _cse_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items()
            if "cryptospreadedge" in str(svc.get("image", "")) or "build" in svc}  # fmt: skip


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_validates_against_the_compose_specification(name: str) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_load(name))
    ]
    assert errors == []


def test_the_schema_check_catches_a_mistake() -> None:
    doc = _load("swarm-stack.yml")
    doc["services"]["worker"]["deploy"]["update_config"]["order"] = "whenever"
    doc["services"]["api"]["healthcheck_"] = {}
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(doc))) >= 2


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_every_cse_service_runs_an_existing_subcommand_with_existing_flags(name: str) -> None:
    services = _cse_services(_load(name))
    assert {"worker", "projector", "api", "topics"} <= set(services)
    parser = build_parser()
    for service, spec in services.items():
        command = spec["command"]
        try:
            args = parser.parse_args(command)
        except SystemExit as exc:  # argparse reports the unknown subcommand or flag on stderr
            raise AssertionError(
                f"{name}: service {service}: `cse {' '.join(command)}` does not parse"
            ) from exc
        config = getattr(args, "config", None)
        if config is not None:  # the run configuration it names is mounted into the container
            mounts = [str(v) for v in spec.get("volumes", [])] + [
                str(c.get("target")) for c in spec.get("configs", [])
            ]
            assert any(str(config) in m for m in mounts), f"{service}: {config} is not mounted"


def test_swarm_stack_has_production_settings() -> None:
    doc = _load("swarm-stack.yml")
    for service, spec in _cse_services(doc).items():
        if service == "topics":
            continue
        deploy = spec["deploy"]
        assert deploy["update_config"]["failure_action"] == "rollback", service
        assert "rollback_config" in deploy and "restart_policy" in deploy, service
        assert deploy["resources"]["limits"]["memory"], service
        assert deploy["placement"]["constraints"], service
        assert spec["healthcheck"]["test"], service
    assert doc["networks"]["cse"]["driver"] == "overlay"
    assert all(s.get("external") for s in doc["secrets"].values())
    assert {"cse_pg_password", "cse_binance_api_key", "cse_binance_api_secret"} <= set(doc["secrets"])
    for config in doc["configs"].values():
        assert (ROOT / config["file"]).is_file(), config["file"]
    # workers scale with the md partitions: never more replicas than partitions (idle consumers)
    partitions = int(doc["services"]["worker"]["environment"]["CSE_KAFKA_PARTITIONS"])
    assert doc["services"]["worker"]["deploy"]["replicas"] <= partitions


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    assert re.search(r'^ENTRYPOINT \["cse"\]', text, re.M)


def test_dashboards_and_alerts_query_only_metrics_the_code_defines() -> None:
    from prometheus_client import REGISTRY, generate_latest

    import adapters.observability.metrics  # noqa: F401 - registers the catalogue

    defined = exported_names(generate_latest(REGISTRY).decode())
    exprs = dashboard_exprs() + alert_exprs()
    assert len(exprs) > 30
    queried = set().union(*(metric_names_in(e) for e in exprs))
    assert queried - defined - {"up"} == set()


def test_dashboards_use_the_provisioned_datasources() -> None:
    provisioned = {d["uid"] for d in yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/cse.yml").read_text())["datasources"]}  # fmt: skip
    uids = []
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in provisioned, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
    assert len(uids) == len(set(uids)) == 5
