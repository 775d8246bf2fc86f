"""ocicat and its neighbours as real processes on loopback ports: ports, waits, environments, ``ocicat`` commands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
OCICAT = [sys.executable, "-m", "ocicat"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.02, what: str = "condition"):
    """Wait for ``predicate`` to hold, and return what it returned; AssertionError after ``timeout`` s.

    The ceiling is generous (a minute unless a test needs longer): the machine running the tests is shared and
    can stall for seconds, and a wait ends as soon as its condition holds. How fast things happen is measured
    by bench/, never asserted here.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 60.0) -> None:
    def up():
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(up, timeout, 0.05, f"{url} to answer")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants at once (a crash, not a shutdown), and reap what is ours."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=30)


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

    def crash(self) -> None:
        """SIGKILL the command and every process it started (gunicorn's workers too)."""
        kill_tree(self.process.pid)
        self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
