"""docker-compose.yml stays valid and consistent with the registry config it mounts."""

from __future__ import annotations

import subprocess

import yaml

from ocicat.config import Config

from .support import REPO_ROOT


def test_compose_file_is_valid():
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_services_agree_with_the_registry_config():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    registry = yaml.safe_load((REPO_ROOT / "deploy" / "registry.yml").read_text())
    [endpoint] = registry["notifications"]["endpoints"]
    for service in ("ocicat-api", "ocicat-worker"):
        config = Config.from_env(compose["services"][service]["environment"])  # parses as ocicat would
        assert endpoint["headers"]["Authorization"] == [f"Bearer {config.webhook_secrets[0]}"]
        assert config.registry_url == "http://registry:5000"
    assert endpoint["url"] == "http://ocicat-api:8080/api/v1/events"
    assert endpoint["ignore"] == {"mediatypes": ["application/octet-stream"], "actions": ["pull", "mount"]}
