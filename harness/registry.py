"""A real CNCF registry (Debian's ``docker-registry``, Distribution 2.8) on a loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from .processes import free_port, wait_http


class Registry:
    """``docker-registry serve`` (CNCF Distribution) on a loopback port, notifying ``notify_url``."""

    def __init__(self, notify_url: str | None = None, secret: str = "", auth: dict | None = None, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="ocicat-registry-"))
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            # The blob descriptor cache is on in the configuration Distribution (and Debian) ship.
            "storage": {"cache": {"blobdescriptor": "inmemory"}, "filesystem": {"rootdirectory": str(self.dir / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "test-secret"},
        }
        if auth:
            config["auth"] = auth
        if notify_url:
            config["notifications"] = {
                "endpoints": [
                    {
                        "name": "ocicat",
                        "url": notify_url,
                        "headers": {"Authorization": [f"Bearer {secret}"]},
                        "timeout": "2s",
                        "threshold": 3,
                        "backoff": "200ms",
                        "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull", "mount"]},
                    }
                ]
            }
        self.config_path = self.dir / "config.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process = None
        self.env: dict[str, str] = {}  # extra environment for the registry process (bench/resync.py sets GOGC)

    def start(self) -> "Registry":
        self.log = open(self.dir / "registry.log", "ab")
        self.process = subprocess.Popen(["docker-registry", "serve", str(self.config_path)], stdout=self.log, stderr=self.log,
                                        env={**os.environ, **self.env})
        wait_http(f"{self.url}/v2/")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
