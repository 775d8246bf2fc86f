"""Prometheus metrics: every counter and histogram ocicat keeps, defined once.

Where they are read:
- ``ocicat api`` runs several gunicorn worker processes, so it uses
  prometheus_client's multiprocess mode: ``ocicat api`` points
  ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before gunicorn forks, each
  process writes its samples there, and ``/metrics`` (api/app.py) merges them.
  That variable must be set before prometheus_client is first imported, which
  is why nothing imports this module before the command has decided.
- ``ocicat worker`` is one process: it serves its own registry on
  ``OCICAT_WORKER_METRICS_LISTEN`` (indexing, registry errors, dead letters,
  Kafka lag), so several workers are scraped one by one, like any replica.
- Figures that live in the database (queue depth, open dead letters) are read
  at scrape time by ``DatabaseCollector``, the same answer from any process.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

EVENTS_RECEIVED = Counter("ocicat_events_received_total", "Registry events the receiver kept and put on the bus",
                          ["action"])
EVENTS_REJECTED = Counter(
    "ocicat_events_rejected_total",
    "Registry events or envelopes the receiver did not put on the bus, by reason "
    "(invalid: parked as a dead letter; unauthorized, too_large, not_json, not_envelope: the whole envelope; "
    "unavailable: the bus could not store it, the registry retries)",
    ["reason"])
EVENTS_CLOCK_AHEAD = Counter("ocicat_events_clock_ahead_total",
                             "Registry events dated more than a minute ahead of ocicat's clock, dated when received "
                             "instead (check the registry's clock)")
EVENTS_IGNORED = Counter("ocicat_events_ignored_total", "Registry events of no interest (pulls, mounts, blob pushes)")
INDEX_SECONDS = Histogram("ocicat_index_seconds", "Time to apply one event to the catalog, fetches included",
                          ["action"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
REGISTRY_ERRORS = Counter("ocicat_registry_fetch_errors_total",
                          "Registry requests that failed, by HTTP status (or 'connection')", ["status"])
DEAD_LETTERS = Counter("ocicat_dead_letters_total", "Events parked as dead letters, by stage (receiver, worker)",
                       ["stage"])
KAFKA_LAG = Gauge("ocicat_kafka_consumer_lag", "Messages not yet settled on a partition this worker owns",
                  ["partition"], multiprocess_mode="livesum")
RESYNC_REPOSITORIES = Counter("ocicat_resync_repositories_total", "Repositories a resync crawl reconciled, by outcome",
                              ["outcome"])
CATALOG_EVENTS_DISPATCHED = Counter("ocicat_catalog_events_dispatched_total",
                                    "Catalog events handed to the outputs (the Kafka catalog topic), by type", ["type"])
DELIVERIES = Counter("ocicat_deliveries_total", "Webhook delivery attempts, by what became of them (delivered, "
                     "pending: to be retried, failed: out of retries or 410 Gone, skipped: the owner may not see it)",
                     ["state"])
DELIVERY_SECONDS = Histogram("ocicat_delivery_seconds", "Time for a webhook target to answer one delivery",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
API_SECONDS = Histogram("ocicat_api_request_seconds", "HTTP request latency, by route and method",
                        ["route", "method"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
API_READS = Counter("ocicat_api_reads_total", "The API's catalog reads, by the database they ran on (replica or "
                    "primary: OCICAT_DATABASE_REPLICA_URLS)", ["database"])


class DatabaseCollector:
    """Queue depth, open dead letters and catalog events waiting to go out, counted in PostgreSQL when scraped."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        try:
            with self.db.transaction() as cur:
                cur.execute("SELECT (SELECT count(*) FROM event_queue) AS queued, "
                            "(SELECT count(*) FROM event_queue WHERE available_at > now()) AS delayed, "
                            "(SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL) AS dead, "
                            "(SELECT count(*) FROM catalog_events WHERE dispatched_at IS NULL) AS undispatched, "
                            "(SELECT coalesce(extract(epoch FROM now() - min(recorded_at)), 0) FROM catalog_events"
                            " WHERE dispatched_at IS NULL) AS undispatched_age, "
                            "(SELECT count(*) FROM deliveries WHERE state = 'pending') AS deliveries_pending, "
                            "(SELECT count(*) FROM subscriptions WHERE failing_since IS NOT NULL) AS failing")
                row = cur.fetchone()
        except Exception:  # noqa: BLE001 - a scrape must answer even with the database down
            log.warning("metrics: database unavailable", exc_info=True)
            return
        yield GaugeMetricFamily("ocicat_queue_depth", "Events waiting on the PostgreSQL queue table "
                                "(with Kafka: the delayed retries only)", value=row["queued"])
        yield GaugeMetricFamily("ocicat_queue_delayed", "Queued events not due now: waiting for a retry, or leased by "
                                "a worker indexing them", value=row["delayed"])
        yield GaugeMetricFamily("ocicat_dead_letters_open", "Dead letters not replayed", value=row["dead"])
        yield GaugeMetricFamily("ocicat_catalog_events_undispatched", "Catalog events recorded but not yet handed to "
                                "the outputs", value=row["undispatched"])
        yield GaugeMetricFamily("ocicat_catalog_events_undispatched_age_seconds", "Age of the oldest catalog event "
                                "not yet handed to the outputs (0 when none waits)", value=float(row["undispatched_age"]))
        yield GaugeMetricFamily("ocicat_deliveries_pending", "Webhook deliveries waiting to be sent or retried",
                                value=row["deliveries_pending"])
        yield GaugeMetricFamily("ocicat_subscriptions_failing", "Subscriptions marked failing (a delivery ran out of "
                                "retries, or the target answered 410 Gone)", value=row["failing"])
