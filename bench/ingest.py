#!/usr/bin/env python
"""Ingest benchmark: a real registry notifying real ocicat processes, on loopback.

    .venv/bin/python bench/ingest.py [--count N] [--database-server URL] [--worker-concurrency 1,2,4,8] [--profile]

Measures, on one machine:

1. Freshness: N distinct Helm charts (Helm's OCI layout) are pushed one at a time to a real
   CNCF registry that notifies ``ocicat serve``; after each push returns, the
   tags API is polled (every ~5 ms) until the tag shows up. Reports the
   push-to-visible latency (p50, p95, max) against the 250 ms p95 target.
2. Sustained indexing rate: ``ocicat api`` runs alone (no worker), N more
   charts are pushed, their events pile up in ``event_queue``; then
   ``ocicat worker`` is started and timed until the queue is empty and every
   tag is visible in the API. Reports manifests indexed per second.
3. Bare-fetch baseline: the registry GETs the worker makes for each of those N
   charts (the manifest by digest, its config blob, its chart layer read to the
   end), with nothing else done, from plain ``requests.Session`` objects:
   sequentially, and on as many threads as the worker ran (one session each).
   The indexing rate is reported as a percentage of the bare rate at the
   worker's own concurrency (target >= 70%).

With ``--profile``, phase 2 also samples the worker with py-spy (bench/profile.py) and prints where a chart
event's time goes on a claiming thread (registry fetches, SQL statements, commits, gzip and tar, YAML, ...) and the
CPU the worker, the registry and PostgreSQL each spent per event: on a machine whose cores they share, the ratio to
bare fetching is bounded by their CPU, not by waiting.

Exits 1 if a target is missed (``--impossible-targets`` shows that it does).

A fresh database is created on the PostgreSQL server for the run and dropped
at the end; every process started here is stopped, also on failure or timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from bench.common import Run, add_run_arguments, percentile, print_header, run_bounded, scalar  # noqa: E402
from bench.profile import WorkerProfile  # noqa: E402
from harness.oci import push_chart  # noqa: E402
from harness.processes import wait_until  # noqa: E402
from ocicat.config import Config  # noqa: E402
from ocicat.oci.media_types import MANIFEST_TYPES  # noqa: E402

FRESHNESS_TARGET_P95_MS = 250.0
RATE_TARGET_PERCENT = 70.0
POLL_INTERVAL = 0.005
BARE_ROUNDS = 3
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)


# -- the benchmark ----------------------------------------------------------------


class Bench(Run):
    """The ingest benchmark's three phases."""

    name = "ingest"

    def __init__(self, args):
        super().__init__(args)
        self.repositories = [f"bench/app-{k}" for k in range(args.repositories)]

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
        profile = (WorkerProfile(worker.process.pid, self.registry.process.pid, self.workdir / f"profile-{label}.txt")
                   if self.args.profile else None)
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
        if profile is not None:
            profile.stop()
        if ready_at is None and "worker started:" in worker.output():
            ready_at = empty_at
        wait_until(lambda: self.all_visible(charts), timeout=30, interval=POLL_INTERVAL, what=f"all {label} tags in the API")
        done_at = time.monotonic()
        # Steady state from the database's own clock: first to last manifest written.
        first, last, indexed = self.indexed_span([d for _, _, d in charts])
        self.stop(worker)
        dead = scalar(conn, "SELECT count(*) FROM dead_letters") - dead_before
        return {
            "label": label,
            "threads": concurrency if concurrency is not None else Config.worker_concurrency,
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
            "profile": profile and profile.summary(count, concurrency or Config.worker_concurrency, empty_at - spawned),
        }

    def _sessions(self) -> int | None:
        """Sessions PostgreSQL has seen end on the run's database (pg_stat_database.sessions, PostgreSQL 14+)."""
        try:
            return scalar(self.db(), "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        except psycopg2.Error:
            self.conn = None
            return None

    # -- phase 3 ---------------------------------------------------------------

    def bare_fetch(self, charts, threads: int) -> dict:
        """Charts per second the registry serves the worker's GETs at, on ``threads`` threads: median of rounds."""
        base = self.registry.url
        local = threading.local()

        def fetch(chart) -> None:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.trust_env = False
            session = local.session
            repository, _tag, digest = chart
            response = session.get(f"{base}/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT},
                                   timeout=10)
            response.raise_for_status()
            manifest = json.loads(response.content)
            for descriptor in (manifest["config"], *manifest["layers"]):
                with session.get(f"{base}/v2/{repository}/blobs/{descriptor['digest']}", timeout=10,
                                 stream=True) as blob:
                    blob.raise_for_status()
                    for _ in blob.iter_content(65536):
                        pass

        def round_rate(pool) -> float:
            started = time.monotonic()
            list(pool.map(fetch, charts))
            return len(charts) / (time.monotonic() - started)

        with ThreadPoolExecutor(threads) as pool:
            round_rate(pool)  # warm-up: connections, registry caches, page cache
            # Median of a few rounds: the machine may be shared, and one round is short.
            rates = sorted(round_rate(pool) for _ in range(BARE_ROUNDS))
        return {"rate": rates[len(rates) // 2], "range": (rates[0], rates[-1])}

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
            line = (f"      worker threads {result['threads']}: queued {result['queued']} events "
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
            for profiled in result["profile"] or ():
                print("        " + profiled)
            if result["sessions"] is not None:
                print(f"        PostgreSQL sessions ended on the database while the worker drained the queue: {result['sessions']} "
                      f"({result['sessions'] / args.count:.2f} per event)")
        print()

        levels = sorted({1, *(r["threads"] for r in runs)})
        print(f"[3/3] bare fetch: the worker's GETs for each of the {args.count} charts (manifest by digest, config "
              f"blob, chart layer), nothing else, on {', '.join(map(str, levels))} thread(s)")
        bare = {}
        for threads in levels:
            bare[threads] = self.bare_fetch(runs[0]["charts"], threads)
            low, high = bare[threads]["range"]
            print(f"      {threads} thread(s): {bare[threads]['rate']:.1f} charts/s (median of {BARE_ROUNDS} rounds, "
                  f"{low:.1f}-{high:.1f})")
        print()

        targets = self.targets
        print("results")
        print(f"      freshness p95 {p95:.1f} ms (p50 {p50:.1f} ms, max {worst:.1f} ms, n={len(lat)}): "
              + targets.at_most("push-to-visible p95", p95, FRESHNESS_TARGET_P95_MS, " ms"))
        # "Sustained" is the steady state: timed from the worker's "worker started"
        # line (process start-up, imports and migrations excluded) when it was seen.
        for result in runs:
            cold = args.count / result["from_spawn"]
            rate = args.count / result["from_ready"] if result["from_ready"] is not None else cold
            same = bare[result["threads"]]["rate"]
            percent = 100 * rate / same
            verdict = targets.at_least(f"sustained indexing on {result['threads']} thread(s), % of bare fetch on as "
                                       f"many", percent, RATE_TARGET_PERCENT, "%", digits=0)
            print(f"      sustained indexing ({result['threads']} threads) {rate:.1f} manifests/s = {percent:.0f}% of "
                  f"bare fetch on {result['threads']} threads ({same:.1f}/s), {100 * rate / bare[1]['rate']:.0f}% of "
                  f"sequential ({bare[1]['rate']:.1f}/s): {verdict}; with start-up {cold:.1f}/s = "
                  f"{100 * cold / same:.0f}%")
            complete = targets.holds(f"every event of the run on {result['threads']} thread(s) indexed, none dead: "
                                     f"{result['indexed']} of {args.count} manifests, {result['dead']} dead letters",
                                     result["indexed"] == args.count and not result["dead"])
            print(f"        {result['indexed']} of {args.count} manifests indexed, {result['dead']} dead letters: {complete}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="charts per phase (default 1000)")
    parser.add_argument("--repositories", type=int, default=10, help="repositories the charts are spread over (default 10)")
    parser.add_argument("--worker-concurrency", type=lambda s: [int(v) for v in s.split(",") if v.strip()], default=None,
                        help="OCICAT_WORKER_CONCURRENCY for the indexing phase; a comma list repeats the phase "
                             "with each value (default: ocicat's own default)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the worker with py-spy while it drains the queue, and print where a chart "
                             "event's time goes and the CPU of the worker, the registry and PostgreSQL per event")
    add_run_arguments(parser, time_limit=900.0)
    args = parser.parse_args()
    if args.count < 1 or args.repositories < 1:
        parser.error("--count and --repositories must be at least 1")

    return run_bounded(Bench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
