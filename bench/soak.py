#!/usr/bin/env python
"""Soak benchmark: a steady stream of real pushes and deletes for a long time; is memory flat?

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 5] [--sample-seconds 30]

A real CNCF registry notifies ``ocicat api`` (gunicorn, PostgreSQL queue) and
one ``ocicat worker`` indexes. A pusher uploads small OCI images at
``--rate`` pushes per second over 20 repositories, moving 50 tags per
repository round and round (so the catalog stays a constant size and only a
leak can make memory grow), and deletes every tenth pushed manifest. Every
``--sample-seconds`` the resident memory (RSS) of the worker and of the API
(gunicorn master and its workers together) is printed with the queue depth.

At the end it prints the RSS growth from the first sample after warm-up to
the mean of the last five, per process. Targets: neither process grows by
more than 10 MiB (the catalog stays the same size, so growth is a leak), the
queue drains, and no event is dead-lettered nor push refused; exits 1 if one
is missed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from bench.common import Run, add_run_arguments, print_header, run_bounded, scalar  # noqa: E402
from harness.oci import push_image  # noqa: E402

REPOSITORIES = 20
TAGS = 50
WARM_UP_SAMPLES = 2
GROWTH_TARGET_MIB = 10.0


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (gunicorn's workers are children of its master)."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
    except psutil.NoSuchProcess:
        return float("nan")
    return total / 1024 / 1024


class Soak(Run):
    """A run of ``ocicat api`` and ``ocicat worker`` under a steady load of pushes and deletes."""

    name = "soak"

    def __init__(self, args):
        super().__init__(args)
        self.repositories = [f"bench/app-{k}" for k in range(REPOSITORIES)]
        self.pushed = 0
        self.deleted = 0
        self.push_errors = 0
        self.stopping = threading.Event()

    def pusher(self) -> None:
        interval = 1.0 / self.args.rate
        next_at = time.monotonic()
        n = 0
        while not self.stopping.is_set():
            repository = self.repositories[n % REPOSITORIES]
            tag = f"t{(n // REPOSITORIES) % TAGS}"
            try:
                digest = push_image(self.registry.url, repository, tag, seed=f"{self.run_id}-{n}", session=self.push_http)
                self.pushed += 1
                if n % 10 == 9:
                    self.push_http.delete(f"{self.registry.url}/v2/{repository}/manifests/{digest}", timeout=10).raise_for_status()
                    self.deleted += 1
            except requests.RequestException:
                self.push_errors += 1
            n += 1
            next_at += interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def run(self) -> None:
        args = self.args
        print_header("soak", self.run_id, args.database_server)
        print(f"setup:           {args.minutes:g} min at {args.rate:g} pushes/s over {REPOSITORIES} repositories x "
              f"{TAGS} moving tags, every 10th manifest deleted; PostgreSQL queue; one worker")
        self.setup()
        api = self.start("api")
        self.wait_api(api)
        worker = self.start("worker")
        thread = threading.Thread(target=self.pusher, daemon=True)
        thread.start()
        conn = self.db()
        samples = []
        print()
        print(f"{'minute':>7} {'worker MiB':>11} {'api MiB':>8} {'queue':>6} {'pushed':>7} {'deleted':>8}")
        started = time.monotonic()
        end = started + args.minutes * 60
        while True:
            now = time.monotonic()
            sample = (now - started, rss_mib(worker.process.pid), rss_mib(api.process.pid),
                      scalar(conn, "SELECT count(*) FROM event_queue"))
            samples.append(sample)
            print(f"{sample[0] / 60:7.1f} {sample[1]:11.1f} {sample[2]:8.1f} {sample[3]:6d} {self.pushed:7d} "
                  f"{self.deleted:8d}", flush=True)
            for process in (api, worker):
                if process.process.poll() is not None:
                    raise RuntimeError(f"ocicat {process.command} exited:\n{process.output()[-3000:]}")
            if now >= end:
                break
            time.sleep(min(args.sample_seconds, max(0.1, end - time.monotonic())))
        self.stopping.set()
        thread.join(15)
        drained = time.monotonic()
        while scalar(conn, "SELECT count(*) FROM event_queue") and time.monotonic() - drained < 60:
            time.sleep(0.2)
        queued, dead = scalar(conn, "SELECT count(*) FROM event_queue"), scalar(conn, "SELECT count(*) FROM dead_letters")
        print()
        print("results")
        print(f"      {self.pushed} pushes, {self.deleted} deletes, {self.push_errors} push errors in "
              f"{(time.monotonic() - started) / 60:.1f} min; {queued} events left in the queue, {dead} dead letters: "
              + self.targets.holds(f"{self.pushed} pushes and {self.deleted} deletes indexed: {queued} events left, "
                                   f"{dead} dead letters, {self.push_errors} push errors",
                                   not (queued or dead or self.push_errors)))
        base = samples[min(WARM_UP_SAMPLES, len(samples) - 1)]
        tail = samples[-5:]
        for column, name in ((1, "worker"), (2, "api")):
            last = sum(s[column] for s in tail) / len(tail)
            verdict = self.targets.at_most(f"{name} RSS growth after warm-up", last - base[column], GROWTH_TARGET_MIB,
                                           " MiB")
            print(f"      {name:6} RSS after warm-up {base[column]:.1f} MiB -> mean of the last {len(tail)} samples "
                  f"{last:.1f} MiB ({last - base[column]:+.1f} MiB, peak {max(s[column] for s in samples):.1f} MiB, "
                  f"{len(samples)} samples): {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to push (default 30)")
    parser.add_argument("--rate", type=float, default=5.0, help="pushes per second (default 5)")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="seconds between memory samples (default 30)")
    add_run_arguments(parser, time_limit=0)
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0:
        parser.error("--minutes and --rate must be positive")
    args.time_limit = args.time_limit or args.minutes * 60 + 300
    return run_bounded(Soak(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
