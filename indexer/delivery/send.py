"""Webhook deliveries: each subscription's pending deliveries sent in order, signed, retried for hours.

A deliverer (in every worker, or ``ocicat deliver``) claims, for each subscription whose oldest pending delivery
is due, a run of its oldest pending deliveries (ocicat.subscriptions.claim: leased, so deliverers in several
processes never send one subscription's deliveries at once or out of order) and sends each run in order on a pool
of threads, one request per subscription at a time: a slow or dead target holds up only its own subscription,
never the others or indexing (and while events wait to be indexed, deliveries slow down: indexer.delivery.yielding).
Outcomes are written in batches by one recorder thread; a run's next claim waits
for them, so order holds across runs too.

Each request is signed per Standard Webhooks (the ``standardwebhooks`` library): ``webhook-id`` (``msg_`` and the
delivery's id: the same on every retry, so a receiver dedupes by it), ``webhook-timestamp`` and
``webhook-signature`` (``v1,<HMAC-SHA256>``, with the previous secret's signature too for a day after a rotation).
The owner must still be allowed to see the event's repository when it is sent (``visible``), or the delivery is
skipped. Requests go only where ocicat.outbound lets them, connect within 5 s, answer within 10 s; redirects are
not followed, the whole answer must come within 15 s (a cut-off answer is a failure) and at most 1 KiB of it is
kept. A 2xx delivers; 410 Gone pauses the subscription; anything
else is retried after a backoff that grows threefold from ``OCICAT_DELIVERY_BACKOFF_SECONDS`` (with ±20% jitter, or
a Retry-After up to the cap), up to ``OCICAT_DELIVERY_ATTEMPTS`` attempts (about 20 hours by default), after which
the delivery fails and the subscription is marked failing with the reason, for its owner to see.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import psycopg2
import psycopg2.extensions
import urllib3
from standardwebhooks.webhooks import Webhook

from ocicat import metrics, subscriptions
from ocicat.db import Database, listen, notified
from ocicat.outbound import Guard, Refused, guarded_pool

from . import yielding
from .render import cloudevent, http_message, ping

log = logging.getLogger(__name__)

TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
ANSWER_DEADLINE_SECONDS = 15.0  # the whole answer, however slowly it drips
EXCERPT_BYTES = 1024
ANSWER_MAX_BYTES = 64 * 1024  # read this much of an answer at most, then hang up
MAX_BACKOFF = timedelta(hours=4)
IDLE_WAKEUP_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 600
RUN_LENGTH = 20  # deliveries of one subscription claimed, and sent in order, at once
USER_AGENT = "ocicat-webhooks/1"


def next_attempt(attempts: int, base_seconds: float, retry_after: str | None, now: datetime,
                 rng: random.Random = random) -> datetime:
    """When to try again after ``attempts`` failed: base × 3^(attempts-1), ±20% jitter, capped at MAX_BACKOFF; a
    Retry-After of seconds (429, 503) is honoured up to the cap."""
    if retry_after and retry_after.strip().isdigit():
        return now + min(timedelta(seconds=int(retry_after)), MAX_BACKOFF)
    delay = min(base_seconds * 3 ** (attempts - 1), MAX_BACKOFF.total_seconds())
    return now + timedelta(seconds=delay * rng.uniform(0.8, 1.2))


def _excerpt(response: urllib3.BaseHTTPResponse, deadline: float) -> str:
    """The start of the answer's body, read to its end (up to ANSWER_MAX_BYTES) so that an answer cut off mid-body
    raises, and by ``deadline``."""
    head, total = b"", 0
    for chunk in response.stream(EXCERPT_BYTES):
        head, total = head or chunk, total + len(chunk)
        if total >= ANSWER_MAX_BYTES:
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the answer took over {ANSWER_DEADLINE_SECONDS:.0f} s")
    return head[:EXCERPT_BYTES].decode("utf-8", "replace")


class Deliverer:
    def __init__(self, db: Database, guard: Guard, public_url: str, default_public: bool, concurrency: int,
                 attempts: int, backoff_seconds: float, retention_days: int, yield_to_indexing: bool):
        self.db = db
        self.yield_to_indexing = yield_to_indexing  # the bus is the PostgreSQL queue, whose backlog it sees (yielding)
        self.public_url = public_url
        self.default_public = default_public
        self.concurrency = concurrency
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.retention = timedelta(days=retention_days)
        self.pool = guarded_pool(guard, concurrency)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._outcomes: queue.Queue = queue.Queue()

    def run(self, stop: threading.Event) -> None:
        """Claim and send until ``stop``; the runs in flight finish and are recorded first."""
        threads = [threading.Thread(target=self._listen, args=(stop,), name="deliveries-listen", daemon=True),
                   threading.Thread(target=self._record, args=(stop,), name="deliveries-record", daemon=True)]
        for thread in threads:
            thread.start()
        last_prune = 0.0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="deliver") as pool:
            while not stop.is_set():
                self._wakeup.clear()
                try:
                    busy = self.yield_to_indexing and yielding.indexing_busy(self.db)
                    runs = self._claim(1 if busy else self.concurrency)
                    if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                        with self.db.transaction() as cur:
                            subscriptions.prune(cur, self.retention)
                        last_prune = time.monotonic()
                except psycopg2.Error as exc:
                    log.warning("claiming deliveries failed (%s); retrying", str(exc).strip())
                    stop.wait(IDLE_WAKEUP_SECONDS)
                    continue
                for run in runs:
                    pool.submit(self._send_run, run)
                if busy:
                    stop.wait(yielding.PAUSE_SECONDS)
                elif not runs:
                    self._wakeup.wait(IDLE_WAKEUP_SECONDS)
        self._outcomes.put(None)  # the recorder writes what is left, then stops
        for thread in threads:
            thread.join(10)

    def _claim(self, senders: int) -> list[list[dict]]:
        """A run for each of ``senders`` that is free (a sender is busy until its run is sent)."""
        with self._lock:
            free = senders - self._in_flight
        if free <= 0:
            return []
        with self.db.transaction() as cur:
            runs = subscriptions.claim(cur, free, RUN_LENGTH, self.default_public)
        with self._lock:
            self._in_flight += len(runs)
        return runs

    def _send_run(self, run: list[dict]) -> None:
        """One subscription's deliveries, in order, up to one that is not done (to be retried, or failed for good):
        the rest go after it, with the next run."""
        try:
            for delivery in run:
                outcome = self.attempt(delivery)
                self._outcomes.put(outcome)
                metrics.DELIVERIES.labels(outcome.state).inc()
                if outcome.latency_ms is not None:
                    metrics.DELIVERY_SECONDS.observe(outcome.latency_ms / 1000)
                if outcome.state not in ("delivered", "skipped"):
                    break
            self._outcomes.put(run[0]["subscription_id"])  # the run is over: its lease ends with its outcomes
        except Exception:  # noqa: BLE001 - the lease runs out and the run is sent again
            log.exception("sending deliveries of subscription %s failed", run[0]["subscription"])
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wakeup.set()

    def _record(self, stop: threading.Event) -> None:
        """Write outcomes in batches, one transaction for whatever arrived meanwhile, ending the leases of the runs
        that are over in the same transaction (so the next run starts after its predecessor's outcomes)."""
        done = False
        while not done:
            batch = [self._outcomes.get()]
            while True:
                try:
                    batch.append(self._outcomes.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            outcomes = [item for item in batch if isinstance(item, subscriptions.Outcome)]
            released = [item for item in batch if isinstance(item, int)]
            try:
                with self.db.transaction() as cur:
                    if outcomes:
                        subscriptions.finish(cur, outcomes)
                    if released:
                        subscriptions.release(cur, released)
            except psycopg2.Error as exc:  # their leases run out and they are sent again (same webhook-id)
                log.warning("recording %d delivery outcomes failed (%s)", len(outcomes), str(exc).strip())
                stop.wait(IDLE_WAKEUP_SECONDS)
            self._wakeup.set()  # the subscriptions' next deliveries may go now

    def attempt(self, delivery: dict) -> subscriptions.Outcome:
        """Send one delivery and say what became of it (nothing here touches the database)."""
        done = dict(delivery_id=delivery["id"], subscription_id=delivery["subscription_id"])
        if not delivery["visible"]:
            return subscriptions.Outcome(**done, state="skipped",
                                         error=f"the owner may not see {delivery['repository']} now")
        if delivery["event_id"] is None:
            event = ping(delivery["id"], delivery["subscription"], self.public_url)
        else:
            event = cloudevent({**delivery, "id": delivery["event_id"]}, self.public_url)
        message = http_message(event, delivery["format"])
        now = datetime.now(timezone.utc)
        message_id = f"msg_{delivery['id']}"
        body = message.body.decode()
        signatures = " ".join(Webhook(secret).sign(message_id, now, body)
                              for secret in subscriptions.signing_secrets(delivery["secrets"], delivery["rotated_at"], now))
        headers = {**message.headers, "user-agent": USER_AGENT, "webhook-id": message_id,
                   "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signatures}
        started = time.perf_counter()
        status, error, excerpt, retry_after = None, None, None, None
        try:
            response = self.pool.request("POST", delivery["url"], body=message.body, headers=headers, redirect=False,
                                         preload_content=False, timeout=TIMEOUT)
            try:
                retry_after = response.headers.get("Retry-After")
                excerpt = _excerpt(response, started + ANSWER_DEADLINE_SECONDS)
                status = response.status  # only once the whole answer came: a cut-off one is a failure
            finally:
                response.release_conn()
        except Refused as exc:
            error = f"refused: {exc}"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency_ms = (time.perf_counter() - started) * 1000
        done.update(status=status, latency_ms=latency_ms, excerpt=excerpt)
        if status is not None and 200 <= status < 300:
            return subscriptions.Outcome(**done, state="delivered")
        if status is not None:
            error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        if status == 410:
            return subscriptions.Outcome(**done, state="failed", error=error, gone=True)
        if delivery["attempt"] >= self.attempts:
            log.warning("delivery %s to subscription %s failed after %d attempts: %s", delivery["id"],
                        delivery["subscription"], delivery["attempt"], error)
            return subscriptions.Outcome(**done, state="failed", error=error)
        retry_at = next_attempt(delivery["attempt"], self.backoff_seconds, retry_after, now)
        return subscriptions.Outcome(**done, state="pending", error=error, retry_at=retry_at)

    def _listen(self, stop: threading.Event) -> None:
        """Wake the claimer on NOTIFY (new deliveries, a subscription resumed)."""
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = listen(self.db.url, subscriptions.CHANNEL)
                    self._wakeup.set()
                if notified(conn, IDLE_WAKEUP_SECONDS):
                    self._wakeup.set()
            except psycopg2.Error:
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(IDLE_WAKEUP_SECONDS)
        if conn is not None:
            conn.close()
        self._wakeup.set()
