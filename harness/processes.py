"""ocicat and its neighbours as real processes on loopback ports: ports, waits, environments, ``ocicat`` commands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
OCICAT = [sys.executable, "-m", "ocicat"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 20.0) -> None:
    def up():
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, timeout, 0.05, f"{url} to answer")


def python_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCICAT_")}
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Ocicat:
    """An ``ocicat`` command running as its own process (serve, api, worker)."""

    def __init__(self, command: str, env: dict, log_path: Path):
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process = None

    def start(self) -> "Ocicat":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([*OCICAT, self.command], env=self.env, stdout=self.log, stderr=self.log, cwd=REPO_ROOT)
        return self

    def stop(self, sig: int = 15) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
