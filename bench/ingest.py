#!/usr/bin/env python
"""Ingest benchmark: a real registry notifying real ocicat processes, on loopback.

    .venv/bin/python bench/ingest.py [--count N] [--database-server URL] [--worker-concurrency 1,2,4,8]

Measures, on one machine:

1. Freshness: N distinct Helm charts (Helm's OCI layout) are pushed one at a time to a real
   CNCF registry that notifies ``ocicat serve``; after each push returns, the
   tags API is polled (every ~5 ms) until the tag shows up. Reports the
   push-to-visible latency (p50, p95, max) against the 250 ms p95 target.
2. Sustained indexing rate: ``ocicat api`` runs alone (no worker), N more
   charts are pushed, their events pile up in ``event_queue``; then
   ``ocicat worker`` is started and timed until the queue is empty and every
   tag is visible in the API. Reports manifests indexed per second.
3. Bare-fetch baseline: a plain ``requests.Session`` GETs each of those N
   manifests by digest and its config blob, sequentially, from the registry.
   The indexing rate is reported as a percentage of that (target >= 70%).

A fresh database is created on the PostgreSQL server for the run and dropped
at the end; every process started here is stopped, also on failure or timeout.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from ocicat.config import Config  # noqa: E402
from tests.support import Ocicat, Registry, free_port, push_chart, python_env, wait_http, wait_until  # noqa: E402

FRESHNESS_TARGET_P95_MS = 250.0
RATE_TARGET_PERCENT = 70.0
POLL_INTERVAL = 0.005
BARE_ROUNDS = 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class BenchTimeout(Exception):
    """The whole run went over --time-limit."""


# -- small helpers --------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


def database_url_on(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def admin(server_url: str, sql: str) -> None:
    conn = psycopg2.connect(server_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def scalar(conn, sql: str, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def machine_and_versions(server_url: str) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        nproc = str(len(os.sched_getaffinity(0)))
    conn = psycopg2.connect(server_url, connect_timeout=5)
    try:
        pg_version = scalar(conn, "SHOW server_version")
    finally:
        conn.close()
    try:
        registry_version = subprocess.run(
            ["docker-registry", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError as exc:
        registry_version = f"unavailable ({exc})"
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    ocicat_version = setup.get("metadata", "version", fallback="unknown")
    return [
        f"machine:         {cpu}; nproc {nproc}; memory {mem}; {platform.system()} {platform.release()}",
        f"python:          {platform.python_version()} ({sys.executable})",
        f"postgresql:      {pg_version}",
        f"docker-registry: {registry_version}",
        f"ocicat:          {ocicat_version}",
    ]


def print_header(title: str, run_id: str, server_url: str) -> None:
    """The first lines of every benchmark's output: what ran, when, and on which machine and versions."""
    print(f"ocicat {title} benchmark  (run {run_id}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')})")
    for line in machine_and_versions(server_url):
        print(line)


def run_bounded(bench, time_limit: float) -> int:
    """Run ``bench.run()`` under a wall-clock limit; ``bench.cleanup()`` always runs, also on SIGTERM."""

    def on_alarm(signum, frame):
        raise BenchTimeout(f"run exceeded --time-limit {time_limit:.0f}s")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    started = time.monotonic()
    try:
        bench.run()
    except BaseException as exc:
        bench.failed = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        if not isinstance(exc, (BenchTimeout, KeyboardInterrupt, RuntimeError, AssertionError)):
            import traceback

            traceback.print_exc()
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        bench.cleanup()
    print(f"\ntotal run time {time.monotonic() - started:.1f} s")
    return 0


# -- the benchmark ----------------------------------------------------------------


class BenchResources:
    """What a benchmark run starts and must stop: ocicat processes, a registry, a database, a work folder.

    A subclass sets ``args``, ``processes``, ``conn``, ``registry``, ``db_created``, ``db_name``,
    ``db_url``, ``workdir`` and ``failed``; ``cleanup`` runs whatever happened before it.
    """

    def cleanup(self) -> None:
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                print(f"cleanup: stopping ocicat {process.command}: {exc}", file=sys.stderr)
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
        if self.registry is not None:
            try:
                self.registry.close()
            except Exception as exc:  # noqa: BLE001
                print(f"cleanup: stopping the registry: {exc}", file=sys.stderr)
                if self.registry.process and self.registry.process.poll() is None:
                    self.registry.process.kill()
                    self.registry.process.wait()
        if self.db_created:
            if getattr(self.args, "keep_database", False):
                print(f"database kept: {self.db_url}", file=sys.stderr)
            else:
                try:
                    admin(self.args.database_server, f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
                except Exception as exc:  # noqa: BLE001
                    print(f"cleanup: could not drop database {self.db_name}: {exc}", file=sys.stderr)
        if self.failed or self.args.keep_logs:
            print(f"logs kept in {self.workdir}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)


class Bench(BenchResources):
    def __init__(self, args):
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.workdir = Path(tempfile.mkdtemp(prefix="ocicat-bench-"))
        self.db_name = f"ocicat_bench_{self.run_id}"
        self.db_url = database_url_on(args.database_server, self.db_name)
        self.db_created = False
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.secret = "bench-" + uuid.uuid4().hex
        self.registry: Registry | None = None
        self.processes: list[Ocicat] = []
        self.conn = None
        self.http = requests.Session()
        self.http.trust_env = False
        self.push_http = requests.Session()
        self.push_http.trust_env = False
        self.repositories = [f"bench/app-{k}" for k in range(args.repositories)]
        self.failed = False

    # -- lifecycle ------------------------------------------------------------

    def env(self, **overrides) -> dict:
        settings = dict(
            OCICAT_DATABASE_URL=self.db_url,
            OCICAT_DATA_DIR=self.workdir / "data",
            OCICAT_LISTEN=f"127.0.0.1:{self.port}",
            OCICAT_REGISTRY_URL=self.registry.url,
            OCICAT_WEBHOOK_SECRETS=self.secret,
            OCICAT_DEFAULT_VISIBILITY="public",
        )
        settings.update(overrides)
        return python_env(**settings)

    def start(self, command: str, **env) -> Ocicat:
        log_path = self.workdir / f"ocicat-{command}-{len(self.processes)}.log"
        process = Ocicat(command, self.env(**env), log_path).start()
        self.processes.append(process)
        return process

    def stop(self, process: Ocicat) -> None:
        process.stop()
        if process.process.returncode not in (0, -15):
            print(f"  warning: ocicat {process.command} exited with {process.process.returncode}; log {process.log_path}")

    def wait_api(self, process: Ocicat) -> None:
        try:
            wait_http(f"{self.api}/healthz", timeout=30)
        except AssertionError:
            raise RuntimeError(f"ocicat {process.command} did not start:\n{process.output()[-4000:]}") from None

    def setup(self) -> None:
        admin(self.args.database_server, f"CREATE DATABASE {self.db_name}")
        self.db_created = True
        self.registry = Registry(notify_url=f"{self.api}/api/v1/events", secret=self.secret).start()
        # migrations are applied by the ocicat processes themselves

    # -- catalog reads ---------------------------------------------------------

    def visible_tags(self, repository: str) -> dict[str, str]:
        """All tags the API shows for ``repository`` (name -> digest), following pages."""
        tags, cursor = {}, None
        while True:
            params = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            response = self.http.get(f"{self.api}/api/v1/repositories/{repository}/-/tags", params=params, timeout=10)
            if response.status_code == 404:
                return {}
            response.raise_for_status()
            body = response.json()
            tags.update({t["name"]: t["digest"] for t in body["items"]})
            cursor = body.get("next_cursor")
            if not cursor:
                return tags

    def db(self):
        if self.conn is None or self.conn.closed:
            self.conn = psycopg2.connect(self.db_url, connect_timeout=5)
            self.conn.autocommit = True
        return self.conn

    # -- phase 1 ---------------------------------------------------------------

    def freshness(self) -> dict:
        count = self.args.count
        serve = self.start("serve")
        self.wait_api(serve)
        latencies, pushes = [], []
        for i in range(count):
            repository = self.repositories[i % len(self.repositories)]
            tag = f"f-{i:05d}"
            started = time.monotonic()
            digest = push_chart(self.registry.url, repository, tag, f"1.0.{i}+{self.run_id}", session=self.push_http)
            pushed = time.monotonic()
            deadline = pushed + self.args.visible_timeout
            while True:
                if self.visible_tags(repository).get(tag) == digest:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{repository}:{tag} not visible {self.args.visible_timeout}s after its push "
                        f"(image {i + 1} of {count}); see {serve.log_path}"
                    )
                time.sleep(POLL_INTERVAL)
            latencies.append((time.monotonic() - pushed) * 1000)
            pushes.append((pushed - started) * 1000)
        self.stop(serve)
        return {"latencies": latencies, "pushes": pushes}

    # -- phase 2 ---------------------------------------------------------------

    def push_batch(self, label: str) -> tuple[list[tuple[str, str, str]], float]:
        charts = []
        started = time.monotonic()
        for i in range(self.args.count):
            repository = self.repositories[i % len(self.repositories)]
            tag = f"{label}-{i:05d}"
            digest = push_chart(self.registry.url, repository, tag, f"2.{len(label)}.{i}+{self.run_id}.{label}", session=self.push_http)
            charts.append((repository, tag, digest))
        return charts, time.monotonic() - started

    def all_visible(self, charts) -> bool:
        wanted: dict[str, dict[str, str]] = {}
        for repository, tag, digest in charts:
            wanted.setdefault(repository, {})[tag] = digest
        for repository, tags in wanted.items():
            shown = self.visible_tags(repository)
            if any(shown.get(tag) != digest for tag, digest in tags.items()):
                return False
        return True

    def indexing(self, label: str, concurrency: int | None) -> dict:
        count = self.args.count
        conn = self.db()
        charts, push_seconds = self.push_batch(label)
        wait_until(
            lambda: scalar(conn, "SELECT count(*) FROM event_queue") >= count,
            timeout=self.args.visible_timeout + 30, interval=0.02, what=f"{count} events in event_queue",
        )
        time.sleep(0.3)  # let stragglers (duplicates, if any) land before the clock starts
        queued = scalar(conn, "SELECT count(*) FROM event_queue")
        dead_before = scalar(conn, "SELECT count(*) FROM dead_letters")
        sessions_before = self._sessions()
        env = {} if concurrency is None else {"OCICAT_WORKER_CONCURRENCY": concurrency}
        spawned = time.monotonic()
        worker = self.start("worker", **env)
        ready_at = None
        empty_at = None
        while empty_at is None:
            now = time.monotonic()
            if ready_at is None and "worker started:" in worker.output():
                ready_at = now
            if scalar(conn, "SELECT count(*) FROM event_queue") == 0:
                empty_at = now
                break
            if worker.process.poll() is not None:
                raise RuntimeError(f"ocicat worker exited with {worker.process.returncode}:\n{worker.output()[-4000:]}")
            if now - spawned > self.args.visible_timeout + 10 * count:
                raise RuntimeError("event_queue did not drain")
            time.sleep(POLL_INTERVAL)
        # Read before the API is polled below, so that only the worker's sessions count (a session is counted
        # when its backend exits, so the last one or two may be missed here).
        sessions_after = self._sessions()
        if ready_at is None and "worker started:" in worker.output():
            ready_at = empty_at
        wait_until(lambda: self.all_visible(charts), timeout=30, interval=POLL_INTERVAL, what=f"all {label} tags in the API")
        done_at = time.monotonic()
        # Steady state from the database's own clock: first to last manifest written.
        first, last, indexed = self._indexed_span([d for _, _, d in charts])
        self.stop(worker)
        dead = scalar(conn, "SELECT count(*) FROM dead_letters") - dead_before
        threads = concurrency if concurrency is not None else f"default ({Config.worker_concurrency})"
        return {
            "label": label,
            "concurrency": threads,
            "charts": charts,
            "queued": queued,
            "push_seconds": push_seconds,
            "from_spawn": done_at - spawned,
            "from_ready": (done_at - ready_at) if ready_at is not None else None,
            "startup": (ready_at - spawned) if ready_at is not None else None,
            "db_span": (last - first).total_seconds() if indexed > 1 else None,
            "indexed": indexed,
            "dead": dead,
            "sessions": None if None in (sessions_before, sessions_after) else sessions_after - sessions_before,
        }

    def _sessions(self) -> int | None:
        """Sessions PostgreSQL has seen end on the run's database (pg_stat_database.sessions, PostgreSQL 14+)."""
        try:
            return scalar(self.db(), "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        except psycopg2.Error:
            self.conn = None
            return None

    def _indexed_span(self, digests: list[str]):
        with self.db().cursor() as cur:
            cur.execute("SELECT min(indexed_at), max(indexed_at), count(*) FROM manifests WHERE digest = ANY(%s)", (digests,))
            return cur.fetchone()

    # -- phase 3 ---------------------------------------------------------------

    def bare_fetch(self, charts) -> dict:
        session = requests.Session()
        session.trust_env = False
        base = self.registry.url

        def fetch_all(with_config: bool) -> float:
            started = time.monotonic()
            for repository, _tag, digest in charts:
                response = session.get(f"{base}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT}, timeout=10)
                response.raise_for_status()
                if with_config:
                    config = json.loads(response.content)["config"]["digest"]
                    blob = session.get(f"{base}/v2/{repository}/blobs/{config}", timeout=10)
                    blob.raise_for_status()
                    _ = blob.content
            return time.monotonic() - started

        fetch_all(True)  # warm-up: connections, registry caches, page cache
        # Median of a few rounds: the machine may be shared, and one round is short.
        both = sorted(len(charts) / fetch_all(True) for _ in range(BARE_ROUNDS))
        manifest_only = sorted(len(charts) / fetch_all(False) for _ in range(BARE_ROUNDS))
        return {"both_rate": both[len(both) // 2], "both_range": (both[0], both[-1]),
                "manifest_rate": manifest_only[len(manifest_only) // 2]}

    # -- all of it -------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        print_header("ingest", self.run_id, args.database_server)
        print(f"setup:           {args.count} charts per phase over {len(self.repositories)} repositories; "
              f"database {self.db_name}; API/receiver on {self.api}")
        print()
        self.setup()
        print(f"registry:        {self.registry.url} (notifies {self.api}/api/v1/events, bearer secret)")
        print()

        print(f"[1/3] freshness: push {args.count} charts one at a time to `ocicat serve`, poll the tags API every "
              f"{POLL_INTERVAL * 1000:.0f} ms")
        fresh = self.freshness()
        lat = fresh["latencies"]
        p50, p95, worst = percentile(lat, 50), percentile(lat, 95), max(lat)
        print(f"      push (config + chart layer + manifest PUT) p50 {percentile(fresh['pushes'], 50):.1f} ms")
        print(f"      push-to-visible  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {worst:.1f} ms   (n={len(lat)})")
        print()

        print(f"[2/3] sustained indexing: `ocicat api` alone queues {args.count} events, then `ocicat worker` drains them")
        api = self.start("api")
        self.wait_api(api)
        runs = []
        for n, concurrency in enumerate(args.worker_concurrency or [None]):
            result = self.indexing(f"q{n}", concurrency)
            runs.append(result)
            rate_spawn = args.count / result["from_spawn"]
            line = (f"      worker threads {result['concurrency']}: queued {result['queued']} events "
                    f"(pushed in {result['push_seconds']:.1f} s); drained + all tags visible "
                    f"{result['from_spawn']:.2f} s after spawn -> {rate_spawn:.1f} manifests/s")
            print(line)
            details = []
            if result["from_ready"] is not None:
                details.append(f"worker start-up {result['startup']:.2f} s; from 'worker started' "
                               f"{result['from_ready']:.2f} s -> {args.count / result['from_ready']:.1f} manifests/s")
            if result["db_span"]:
                details.append(f"first-to-last indexed_at {result['db_span']:.2f} s -> "
                               f"{(result['indexed'] - 1) / result['db_span']:.1f} manifests/s")
            if details:
                print("        " + "; ".join(details))
            if result["sessions"] is not None:
                print(f"        PostgreSQL sessions ended on the database while the worker drained the queue: {result['sessions']} "
                      f"({result['sessions'] / args.count:.2f} per event)")
            if result["indexed"] != args.count or result["dead"]:
                print(f"        WARNING: {result['indexed']} of {args.count} manifests indexed, {result['dead']} new dead letters")
        print()

        print(f"[3/3] bare fetch: one requests.Session, sequential GET manifest by digest + GET config blob, "
              f"{args.count} charts")
        bare = self.bare_fetch(runs[0]["charts"])
        low, high = bare["both_range"]
        print(f"      manifest+config: {bare['both_rate']:.1f} charts/s (median of {BARE_ROUNDS} rounds, "
              f"{low:.1f}-{high:.1f})   manifest only: {bare['manifest_rate']:.1f}/s")
        print("      (manifest + config is what the worker GETs for each chart)")
        print()

        print("summary")
        print(f"      freshness p95 {p95:.1f} ms vs target {FRESHNESS_TARGET_P95_MS:.0f} ms: "
              f"{'PASS' if p95 <= FRESHNESS_TARGET_P95_MS else 'FAIL'}   (p50 {p50:.1f} ms, max {worst:.1f} ms)")
        # "Sustained" is the steady state: timed from the worker's "worker started"
        # line (process start-up, imports and migrations excluded) when it was seen.
        for result in runs:
            cold = args.count / result["from_spawn"]
            rate = args.count / result["from_ready"] if result["from_ready"] is not None else cold
            percent = 100 * rate / bare["both_rate"]
            print(f"      sustained indexing ({result['concurrency']} threads) {rate:.1f} manifests/s = {percent:.0f}% of "
                  f"bare fetch {bare['both_rate']:.1f}/s vs target {RATE_TARGET_PERCENT:.0f}%: "
                  f"{'PASS' if percent >= RATE_TARGET_PERCENT else 'FAIL'}; with start-up {cold:.1f}/s "
                  f"= {100 * cold / bare['both_rate']:.0f}%")


def add_run_arguments(parser: argparse.ArgumentParser, time_limit: float) -> None:
    """The options every end-to-end benchmark run takes: where its database goes, how long it may take, its logs."""
    parser.add_argument("--database-server", default=os.environ.get("OCICAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server to create the run's database on (a URL to an existing database, "
                             "used for CREATE/DROP DATABASE)")
    parser.add_argument("--visible-timeout", type=float, default=15.0, help="seconds one image may take to show up (default 15)")
    parser.add_argument("--time-limit", type=float, default=time_limit,
                        help=f"abort the whole run after this many seconds (default {time_limit:.0f})")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs of the processes the run started")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="charts per phase (default 1000)")
    parser.add_argument("--repositories", type=int, default=10, help="repositories the charts are spread over (default 10)")
    parser.add_argument("--worker-concurrency", type=lambda s: [int(v) for v in s.split(",") if v.strip()], default=None,
                        help="OCICAT_WORKER_CONCURRENCY for the indexing phase; a comma list repeats the phase "
                             "with each value (default: ocicat's own default)")
    add_run_arguments(parser, time_limit=900.0)
    args = parser.parse_args()
    if args.count < 1 or args.repositories < 1:
        parser.error("--count and --repositories must be at least 1")

    return run_bounded(Bench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
