#!/usr/bin/env python
"""Events-out benchmark: how soon a push reaches a webhook subscriber, how fast deliveries go out, and what
subscribers cost indexing.

    .venv/bin/python bench/events.py [--pushes N] [--subscriptions N] [--count N] [--impossible-targets]

A real CNCF registry notifies ``ocicat api`` (PostgreSQL queue), one ``ocicat worker`` indexes and dispatches,
and one ``ocicat deliver`` sends, as ``ocicat serve`` runs them; the receivers are real HTTP servers on loopback
(harness.webhooks, in this process), each subscription signed with its own secret.

1. Push to delivery: one subscription; --pushes images pushed one after another, each timed from the moment the
   registry answered the push to the moment the receiver got its ``image.published`` delivery. Target: p95
   <= 500 ms.
2. Delivery throughput: --subscriptions subscriptions (on 10 receivers) to every event; --count/10 images pushed
   while the worker is stopped, then the worker started: deliveries per second from the first to the last
   arrival. Target: >= 500 deliveries/s.
3. Indexing with subscribers: --count images queued while the worker is stopped, then drained by a fresh worker,
   with no subscription and again with --subscriptions (whose deliveries go out meanwhile, from ``ocicat
   deliver``), --rounds times alternately: indexed manifests per second, first to last, and the CPU each process
   used meanwhile. Target: the median with subscribers >= 0.9x of the median without; and every delivery of the
   bursts delivered afterwards.

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.common import Run, add_run_arguments, percentile, print_header, run_bounded, scalar  # noqa: E402
from harness.oci import push_image  # noqa: E402
from harness.processes import wait_until  # noqa: E402
from harness.webhooks import Receiver  # noqa: E402
from ocicat import accounts, subscriptions  # noqa: E402
from ocicat.db import Database  # noqa: E402

LATENCY_TARGET_MS = 500.0
THROUGHPUT_TARGET = 500.0
INDEXING_RATIO_TARGET = 0.9
RECEIVERS = 10


class Events(Run):
    name = "events"
    settings = {"OCICAT_DEFAULT_VISIBILITY": "public", "OCICAT_DELIVERY_ALLOW": "127.0.0.1",
                "OCICAT_WORKER_DELIVERY": "false"}

    def __init__(self, args):
        super().__init__(args)
        self.receivers: list[Receiver] = []

    def cleanup(self) -> None:
        for receiver in self.receivers:
            receiver.close()
        super().cleanup()

    def subscribe(self, count: int, receivers: list[Receiver], **filters) -> None:
        db = Database(self.db_url, maxconn=1)
        try:
            with db.transaction() as cur:
                cur.execute("SELECT id FROM users WHERE name = 'bench'")
                row = cur.fetchone()
                if row is None:
                    accounts.create_user(cur, "bench", admin=True)
                owner = accounts.user_id(cur, "bench")
                for n in range(count):
                    subscriptions.create(cur, owner, f"bench-{len(self.receivers)}-{n}-{time.monotonic_ns()}",
                                         receivers[n % len(receivers)].url, "cloudevents", filters)
        finally:
            db.close()

    def unsubscribe_all(self) -> None:
        self.db().cursor().execute("DELETE FROM subscriptions")

    def receiver(self) -> Receiver:
        receiver = Receiver()
        self.receivers.append(receiver)
        return receiver

    def run(self) -> None:
        args = self.args
        print_header("events", self.run_id, args.database_server)
        print("setup:           PostgreSQL queue; `ocicat worker` (4 threads) and `ocicat deliver` (16 senders, "
              "nice 10), as `ocicat serve` runs them; receivers on loopback")
        self.setup()
        api = self.start("api")
        self.wait_api(api)
        deliverer = self.start("deliver")
        worker = self.start("worker")
        wait_until(lambda: "dispatching catalog events" in worker.output(), timeout=60, what="the dispatcher")

        print(f"\n[1/3] push to delivery: {args.pushes} images pushed one at a time, one subscription")
        hook = self.receiver()
        self.subscribe(1, [hook], repository="bench/latency")
        latencies = []
        for n in range(args.pushes):
            seen = len(hook.requests())
            push_image(self.registry.url, "bench/latency", f"t{n}", seed=f"{self.run_id}-{n}", session=self.push_http)
            pushed = time.monotonic()
            arrived = wait_until(lambda: len(hook.requests()) > seen and hook.requests()[seen], timeout=30,
                                 interval=0.001, what=f"delivery {n}")
            latencies.append((arrived.at - pushed) * 1000)
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        verdict = self.targets.at_most(f"push to delivery, p95 (n={len(latencies)})", p95, LATENCY_TARGET_MS, " ms")
        print(f"      p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms (n={len(latencies)}): {verdict}")
        self.unsubscribe_all()

        print(f"\n[2/3] delivery throughput: {args.subscriptions} subscriptions on {RECEIVERS} receivers, "
              f"{args.count // 10} events")
        self.stop(worker)
        sinks = [self.receiver() for _ in range(RECEIVERS)]
        self.subscribe(args.subscriptions, sinks, namespace="bench/fanout")
        events = args.count // 10
        for n in range(events):
            push_image(self.registry.url, f"bench/fanout/app-{n % 5}", f"t{n}", seed=f"{self.run_id}-f{n}",
                       session=self.push_http)
        wait_until(lambda: scalar(self.db(), "SELECT count(*) FROM event_queue") >= events, timeout=60,
                   what="the events queued")
        worker = self.start("worker")
        expected = events * args.subscriptions
        wait_until(lambda: sum(len(s.requests()) for s in sinks) >= expected, timeout=600, interval=0.1,
                   what=f"{expected} deliveries")
        arrivals = sorted(r.at for s in sinks for r in s.requests())
        span = arrivals[-1] - arrivals[0]
        rate = (len(arrivals) - 1) / span if span else float("inf")
        verdict = self.targets.at_least(f"deliveries per second to {args.subscriptions} subscriptions "
                                        f"(n={len(arrivals)})", rate, THROUGHPUT_TARGET, "/s")
        print(f"      {len(arrivals)} deliveries in {span:.2f} s: {rate:.0f} deliveries/s: {verdict}")
        recorded = wait_until(lambda: scalar(self.db(), "SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                              >= expected, timeout=60, what="the deliveries recorded")
        print("      every delivery recorded as delivered: " + self.targets.holds(
            f"{expected} deliveries recorded as delivered", recorded))
        self.unsubscribe_all()

        print(f"\n[3/3] indexing with and without subscribers: {args.count} images queued, then drained; "
              f"{args.rounds} rounds of each, alternately")
        rates: dict[str, list[float]] = {}
        bursts_delivered: list[bool] = []
        phases = [("no subscription", 0), (f"{args.subscriptions} subscriptions", args.subscriptions)]
        for phase, (label, count) in enumerate(phases * args.rounds):
            self.stop(worker)
            self.unsubscribe_all()
            if count:
                self.subscribe(count, sinks, namespace="bench/ingest")
            digests = []
            for n in range(args.count):
                digests.append(push_image(self.registry.url, f"bench/ingest/phase{phase}-{n % 10}", f"t{n}",
                                          seed=f"{self.run_id}-{phase}-{n}", session=self.push_http))
            wait_until(lambda: scalar(self.db(), "SELECT count(*) FROM event_queue") >= args.count, timeout=120,
                       what="the events queued")
            before = _cpu_seconds(deliverer)
            worker = self.start("worker")
            wait_until(lambda: self.indexed_span(digests)[2] == len(digests), timeout=600, interval=0.2,
                       what="every image indexed")
            first, last, indexed = self.indexed_span(digests)
            used = {who: seconds - before.get(who, 0.0) for who, seconds in _cpu_seconds(deliverer, worker).items()}
            rate = (indexed - 1) / (last - first).total_seconds()
            rates.setdefault(label, []).append(rate)
            print(f"      {label}: {indexed} indexed in {(last - first).total_seconds():.2f} s: "
                  f"{rate:.1f} manifests/s; CPU seconds until then: "
                  + ", ".join(f"{who} {seconds:.2f}" for who, seconds in used.items()))
            if count:  # what the subscribers were sent meanwhile arrives once the burst is over, before the next
                started = time.monotonic()
                wait_until(lambda: scalar(self.db(), "SELECT count(*) FROM deliveries WHERE state = 'pending'") == 0,
                           timeout=600, interval=0.2, what="the burst's deliveries")
                delivered = scalar(self.db(), "SELECT count(*) FROM deliveries d JOIN catalog_events e"
                                              " ON e.id = d.event_id WHERE d.state = 'delivered'"
                                              f" AND e.repository LIKE 'bench/ingest/phase{phase}-%%'")
                print(f"        and its {delivered} deliveries all sent {time.monotonic() - started:.1f} s later")
                bursts_delivered.append(delivered == args.count * count)
        without, with_ = (statistics.median(rates[label]) for label, _ in phases)
        ratio = with_ / without
        verdict = self.targets.at_least(f"indexing with {args.subscriptions} subscriptions / without, medians of "
                                        f"{args.rounds}", ratio, INDEXING_RATIO_TARGET, "x", digits=2)
        print(f"      medians {with_:.1f} / {without:.1f} manifests/s: ratio {ratio:.2f}x: {verdict}")
        print("      every delivery of the bursts delivered afterwards: " + self.targets.holds(
            f"{args.count * args.subscriptions} deliveries of each burst delivered", all(bursts_delivered)))


def _cpu_seconds(deliverer, worker=None) -> dict[str, float]:
    """CPU time (user + system) used so far by the worker, the deliverer, PostgreSQL (every server process) and the
    receivers (this process): where the time of the indexing phases goes."""
    import psutil

    def used(process) -> float:
        try:
            times = process.cpu_times()
            return times.user + times.system
        except psutil.Error:
            return 0.0

    figures = {"worker": used(psutil.Process(worker.process.pid)) if worker else 0.0,
               "deliverer": used(psutil.Process(deliverer.process.pid)),
               "postgresql": sum(used(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"),
               "receivers": used(psutil.Process())}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=200, help="pushes timed to their delivery (default 200)")
    parser.add_argument("--subscriptions", type=int, default=100, help="subscriptions (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the indexing phases, each with and without "
                                                              "subscribers (default 3)")
    parser.add_argument("--count", type=int, default=500,
                        help="images per indexing phase; a tenth of them for the throughput phase (default 500)")
    add_run_arguments(parser, time_limit=1200)
    args = parser.parse_args()
    return run_bounded(Events(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
