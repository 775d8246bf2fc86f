"""docker-compose.yml stays valid and consistent with the registry config it mounts and the Kafka node it runs."""

from __future__ import annotations

import subprocess

import yaml

from harness.processes import REPO_ROOT
from indexer.bus.kafka_consumer import SHUTDOWN_GRACE_SECONDS
from ocicat.config import Config


def _compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid():
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_services_agree_with_the_registry_config():
    compose = _compose()
    registry = yaml.safe_load((REPO_ROOT / "deploy" / "registry.yml").read_text())
    [endpoint] = registry["notifications"]["endpoints"]
    for service in ("ocicat-api", "ocicat-worker"):
        config = Config.from_env(compose["services"][service]["environment"])  # parses as ocicat would
        assert endpoint["headers"]["Authorization"] == [f"Bearer {config.webhook_secrets[0]}"]
        assert config.registry_url == "http://registry:5000"
    assert endpoint["url"] == "http://ocicat-api:8080/api/v1/events"
    assert endpoint["ignore"] == {"mediatypes": ["application/octet-stream"], "actions": ["pull", "mount"]}


def test_compose_services_reach_the_kafka_node_it_runs():
    services = _compose()["services"]
    kafka = services["kafka"]["environment"]
    # One KRaft node, controller and broker at once: no ZooKeeper anywhere.
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["CLUSTER_ID"] and not any("ZOOKEEPER" in name for name in kafka)
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    advertised = {listener.split("://")[0]: listener.split("://")[1] for listener in
                  kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert "zookeeper" not in services and services["kafka"]["healthcheck"]["test"]
    replicas = services["ocicat-worker"]["deploy"]["replicas"]
    for service in ("ocicat-api", "ocicat-worker"):
        config = Config.from_env(services[service]["environment"])
        assert config.kafka.bootstrap == (advertised[config.kafka.security_protocol],)
        assert config.kafka.replication_factor <= 1  # a single broker holds one copy
        assert config.kafka.partitions >= replicas * config.worker_concurrency  # every worker thread can have one
        assert services[service]["depends_on"]["kafka"] == {"condition": "service_healthy"}
    # What ocicat uses to keep its own partition count and to commit group offsets on one node.
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false" and kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    grace = services["ocicat-worker"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > SHUTDOWN_GRACE_SECONDS


def test_compose_delivers_webhooks_from_a_process_apart_from_the_workers():
    services = _compose()["services"]
    assert Config.from_env(services["ocicat-worker"]["environment"]).worker_delivery is False
    assert Config.from_env(services["ocicat-api"]["environment"]).public_url == "http://localhost:8080"
    assert services["ocicat-deliver"]["command"] == ["deliver"]
