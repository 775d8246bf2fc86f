"""What every benchmark shares: its first lines (machine and versions), percentiles, its targets and their verdict,
a bounded run that always cleans up, the options every end-to-end run takes, and the processes, registry and
database a run must stop."""

from __future__ import annotations

import argparse
import configparser
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import requests

from harness.oci import push_chart
from harness.postgres import admin, database_url_on
from harness.processes import REPO_ROOT, Ocicat, free_port, python_env, wait_http
from harness.registry import Registry


class BenchTimeout(Exception):
    """The whole run went over --time-limit."""


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
    return ordered[int(rank) - 1]


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


class Targets:
    """The targets a run is judged by, and whether it met each.

    Every check records a line for the verdict and returns ``"PASS"`` or ``"FAIL"`` for the caller's own
    output; :func:`run_bounded` prints the verdict and exits 1 if any target was missed, so a script can
    tell a pass from a miss. With ``impossible`` (``--impossible-targets``) every bound is one no
    measurement can meet: such a run must exit 1, which shows a miss is not lost on the way.
    """

    def __init__(self, impossible: bool = False):
        self.impossible = impossible
        self.results: list[tuple[bool, str]] = []

    def at_most(self, what: str, value: float, bound: float, unit: str = "", digits: int = 1) -> str:
        bound = -math.inf if self.impossible else bound
        return self._record(value <= bound, f"{what}: {value:,.{digits}f}{unit} (target <= {bound:,.{digits}f}{unit})")

    def at_least(self, what: str, value: float, bound: float, unit: str = "", digits: int = 1) -> str:
        bound = math.inf if self.impossible else bound
        return self._record(value >= bound, f"{what}: {value:,.{digits}f}{unit} (target >= {bound:,.{digits}f}{unit})")

    def holds(self, what: str, ok: bool) -> str:
        """A condition rather than a bound: every event indexed once, a bomb refused."""
        return self._record(ok, what)

    def _record(self, ok: bool, line: str) -> str:
        self.results.append((ok, line))
        return "PASS" if ok else "FAIL"

    def verdict(self) -> int:
        """Print every target with its result; 1 if any was missed (or none was checked), else 0."""
        print("\ntargets")
        for ok, line in self.results:
            print(f"      {'PASS' if ok else 'FAIL'}  {line}")
        missed = sum(not ok for ok, _ in self.results)
        if not self.results:
            print("      FAIL  no target was checked: the benchmark is broken")
            return 1
        print(f"      {missed} of {len(self.results)} targets missed" + (" (--impossible-targets)" if self.impossible else ""))
        return 1 if missed else 0


def add_targets_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--impossible-targets", action="store_true",
                        help="judge the run by targets no measurement can meet: it must then exit 1")


def run_bounded(bench, time_limit: float) -> int:
    """Run ``bench.run()`` under a wall-clock limit, then judge it by ``bench.targets``: 0 if every target was met,
    1 if one was missed or the run failed. ``bench.cleanup()`` always runs, also on SIGTERM."""

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
    return bench.targets.verdict()


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


class Run(BenchResources):
    """A run of ocicat processes (``ocicat serve``, ``api``, ``worker``) against a registry that notifies them,
    in a database of the run's own: what the end-to-end benchmarks start, push to and read back."""

    name = "run"  # in the names of the run's database and work folder
    settings: dict = {"OCICAT_DEFAULT_VISIBILITY": "public"}  # for every ocicat process the run starts

    def __init__(self, args):
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ocicat-bench-{self.name}-"))
        self.db_name = f"ocicat_bench_{self.name}_{self.run_id}"
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
        self.repositories: list[str] = []  # what push_batch spreads its charts over
        self.failed = False
        self.targets = Targets(args.impossible_targets)

    # -- lifecycle ------------------------------------------------------------

    def env(self, **overrides) -> dict:
        settings = dict(
            OCICAT_DATABASE_URL=self.db_url,
            OCICAT_DATA_DIR=self.workdir / "data",
            OCICAT_LISTEN=f"127.0.0.1:{self.port}",
            OCICAT_REGISTRY_URL=self.registry.url,
            OCICAT_WEBHOOK_SECRETS=self.secret,
            **self.settings,
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

    def indexed_span(self, digests: list[str]):
        """When the first and the last of these manifests were indexed (the database's clock), and how many are."""
        with self.db().cursor() as cur:
            cur.execute("SELECT min(indexed_at), max(indexed_at), count(*) FROM manifests WHERE digest = ANY(%s)",
                        (digests,))
            return cur.fetchone()

    def db(self):
        if self.conn is None or self.conn.closed:
            self.conn = psycopg2.connect(self.db_url, connect_timeout=5)
            self.conn.autocommit = True
        return self.conn

    # -- pushing ---------------------------------------------------------------

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


def add_run_arguments(parser: argparse.ArgumentParser, time_limit: float) -> None:
    """The options every end-to-end benchmark run takes: where its database goes, how long it may take, its logs."""
    parser.add_argument("--database-server", default=os.environ.get("OCICAT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server to create the run's database on (a URL to an existing database, "
                             "used for CREATE/DROP DATABASE)")
    parser.add_argument("--visible-timeout", type=float, default=15.0, help="seconds one image may take to show up (default 15)")
    parser.add_argument("--time-limit", type=float, default=time_limit,
                        help=f"abort the whole run after this many seconds (default {time_limit:.0f})")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs of the processes the run started")
    add_targets_argument(parser)
