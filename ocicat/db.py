"""PostgreSQL connections: a pool handing out one transaction at a time, and the embedded server.

With ``OCICAT_DATABASE_URL`` unset, ocicat runs its own PostgreSQL under the
data directory (the ``pgserver`` package ships the server binaries), so a
single machine needs nothing installed beforehand.
"""

from __future__ import annotations

import logging
import select
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from .config import Config

log = logging.getLogger(__name__)
logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl command line at INFO

# Seconds to wait for a TCP connection and for any single statement. A stuck
# database must surface as an error the worker can retry, never as a hang.
CONNECT_TIMEOUT = 5
STATEMENT_TIMEOUT_MS = 30_000
# How long a thread waits for a pooled connection before failing like an unreachable database would.
POOL_WAIT_SECONDS = 10

_embedded = None
_embedded_lock = threading.Lock()


def embedded_database_url(data_dir: str) -> str:
    """Start (or join) the embedded PostgreSQL under ``data_dir`` and return its URL.

    pgserver reference-counts the processes that use one data directory and
    stops the server when the last of them exits, so `ocicat serve` keeps it
    alive for its children.
    """
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            import pgserver  # imported lazily: only the embedded mode needs it

            pgdata = Path(data_dir) / "postgres"
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            log.info("starting embedded PostgreSQL in %s", pgdata)
            _embedded = pgserver.get_server(pgdata, cleanup_mode="stop")
        return _embedded.get_uri()


def database_url(config: Config) -> str:
    return config.database_url or embedded_database_url(config.data_dir)


SESSION_DEFAULTS = {
    "connect_timeout": CONNECT_TIMEOUT,
    # Parallel plans and JIT compilation cost more than they save for ocicat's
    # short, index-driven queries (measured by bench/api.py).
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c max_parallel_workers_per_gather=0 -c jit=off",
    "application_name": "ocicat",
}


def connect(url: str) -> "psycopg2.extensions.connection":
    """One new connection with ocicat's session defaults."""
    return psycopg2.connect(url, **SESSION_DEFAULTS)


def listen(url: str, channel: str) -> "psycopg2.extensions.connection":
    """A new connection listening on ``channel`` (in autocommit mode: a NOTIFY arrives between transactions), for
    threads that sleep until something is committed (the queue's claimers, the dispatcher, the deliverers)."""
    conn = connect(url)
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    conn.cursor().execute(f"LISTEN {channel}")
    return conn


def notified(conn, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a NOTIFY on a listening connection: whether one came (all that came are
    taken). Raises psycopg2.Error when the connection is lost."""
    if select.select([conn], [], [], timeout) == ([], [], []):
        return False
    conn.poll()
    came = bool(conn.notifies)
    conn.notifies.clear()
    return came


class Database:
    """A thread-safe pool of connections, handed out one transaction at a time."""

    def __init__(self, url: str, maxconn: int = 10, synchronous_commit: bool = True, **connection):
        """``connection``: libpq settings beyond SESSION_DEFAULTS (a replica's keepalives)."""
        self.url = url
        options = SESSION_DEFAULTS["options"] + ("" if synchronous_commit else " -c synchronous_commit=off")
        # psycopg2 keeps at most ``minconn`` idle connections and closes the
        # rest on return: minconn == maxconn makes every connection reused
        # instead of reopened per transaction (it also opens them up front).
        self._pool = psycopg2.pool.ThreadedConnectionPool(maxconn, maxconn, url,
                                                          **{**SESSION_DEFAULTS, "options": options, **connection})
        # psycopg2's pool raises at once when every connection is out; callers wait their turn instead, bounded.
        self._free = threading.BoundedSemaphore(maxconn)

    @contextmanager
    def transaction(self) -> Iterator["psycopg2.extensions.cursor"]:
        """Yield a dict cursor inside a transaction: commit on success, roll back on error.

        A connection that failed at the protocol level is discarded rather
        than returned to the pool, so one database restart does not poison
        later requests.
        """
        if not self._free.acquire(timeout=POOL_WAIT_SECONDS):
            raise psycopg2.OperationalError(f"no database connection free within {POOL_WAIT_SECONDS}s")
        try:
            conn = self._pool.getconn()
        except BaseException:
            self._free.release()
            raise
        broken = False
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                yield cur
            conn.commit()
        except BaseException as exc:
            broken = isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) or conn.closed
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))
            self._free.release()

    def ping(self) -> None:
        with self.transaction() as cur:
            cur.execute("SELECT 1")

    def close(self) -> None:
        self._pool.closeall()


# -- reads on streaming replicas -------------------------------------------------

REPLICA_DOWN_SECONDS = 5  # a replica that failed is left alone this long, then tried again
# A replica's host that vanishes (a node lost, a network cut, no reset sent) is noticed within seconds, not when TCP
# gives up a quarter of an hour later: the server's statement_timeout cannot fire where no server answers.
REPLICA_CONNECTION = {"connect_timeout": 2, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                      "keepalives_count": 2, "tcp_user_timeout": 10_000}
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"


class _Replica:
    """One streaming replica: its pool, opened at first use (a replica that is down when the API starts must not
    stop it), and when it may be tried again after it failed."""

    def __init__(self, url: str, maxconn: int):
        self.url, self.maxconn = url, maxconn
        parts = urlsplit(url)
        self.host = f"{parts.hostname}:{parts.port or 5432}{parts.path}"  # for log lines: never a password
        self._db: Database | None = None
        self._down_until = 0.0
        self._lock = threading.Lock()

    def database(self) -> Database | None:
        if time.monotonic() < self._down_until:
            return None
        with self._lock:
            if self._db is None and time.monotonic() >= self._down_until:  # not failed while this thread waited
                try:
                    self._db = Database(self.url, self.maxconn, **REPLICA_CONNECTION)
                except psycopg2.OperationalError as exc:
                    self.failed(exc)
        return self._db if time.monotonic() >= self._down_until else None

    def failed(self, exc: Exception) -> None:
        log.warning("replica %s failed (%s): reads go elsewhere for %ds", self.host, str(exc).strip(),
                    REPLICA_DOWN_SECONDS)
        self._down_until = time.monotonic() + REPLICA_DOWN_SECONDS


class Reads:
    """Where the API's catalog reads go: to a streaming replica (OCICAT_DATABASE_REPLICA_URLS) when one is up and
    has replayed the caller's last change, else to the primary. A replica that fails is skipped for a few
    seconds, so the API keeps serving from the primary through a replica's outage (a read in flight on it when it
    fails gets an error); one that lags serves callers who changed nothing, as the catalog is eventually consistent
    anyway (it follows the registry's events). Callers are spread over the replicas by who they are (``affinity``),
    and each keeps to one while it is up, so that what they read does not go back and forth between replicas that
    lag by different amounts (a Helm index from one, its chart archive from another)."""

    def __init__(self, primary: Database, replica_urls: tuple[str, ...], maxconn: int,
                 counted: Callable[[str], None] = lambda where: None):
        self.primary = primary
        self._replicas = [_Replica(url, maxconn) for url in replica_urls]
        self._counted = counted  # told where each read ran: "replica" or "primary" (the API's metrics)

    @property
    def replicated(self) -> bool:
        return bool(self._replicas)

    @contextmanager
    def transaction(self, affinity: str, after: str | None = None, primary: bool = False,
                    snapshot: bool = False) -> Iterator["psycopg2.extensions.cursor"]:
        """A cursor for reads: on a replica that has replayed the primary's WAL up to ``after`` (an LSN), unless
        ``primary`` is asked for (the caller changed something a moment ago); else on the primary. ``snapshot``:
        every statement sees one snapshot (REPEATABLE READ), as a Helm index and its ETag must."""
        count = 0 if primary else len(self._replicas)
        start = zlib.crc32(affinity.encode()) if count else 0  # stable across processes, unlike hash()
        for n in range(count):
            replica = self._replicas[(start + n) % count]
            database = replica.database()
            if database is None:
                continue
            serving = False
            try:
                with database.transaction() as cur:
                    if snapshot:
                        cur.execute(_SNAPSHOT)
                    # Also the replica's liveness check, before anything of the caller's runs on it.
                    cur.execute("SELECT %(after)s::pg_lsn IS NULL OR pg_last_wal_replay_lsn() >= %(after)s::pg_lsn"
                                " AS caught_up", {"after": after})
                    if cur.fetchone()["caught_up"]:
                        serving = True
                        self._counted("replica")
                        yield cur
                        return
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if serving:
                    raise
                replica.failed(exc)
        self._counted("primary")
        with self.primary.transaction() as cur:
            if snapshot:
                cur.execute(_SNAPSHOT)
            yield cur


def note_write(cur, caller: str) -> None:
    """Note that ``caller`` changed something now, at the primary's current WAL position (after their commit)."""
    cur.execute("INSERT INTO caller_writes (caller, lsn) VALUES (%s, pg_current_wal_lsn())"
                " ON CONFLICT (caller) DO UPDATE SET lsn = excluded.lsn, written_at = now()", (caller,))


def last_write(cur, caller: str, sticky_seconds: int) -> tuple[str | None, bool]:
    """Where ``caller``'s reads may go: (the WAL position of their last change, whether it was within
    ``sticky_seconds``, when their reads stay on the primary); (None, False) for a caller who changed nothing."""
    cur.execute("SELECT lsn::text, written_at > now() - %s * interval '1 second' AS recent FROM caller_writes"
                " WHERE caller = %s", (sticky_seconds, caller))
    row = cur.fetchone()
    return (row["lsn"], row["recent"]) if row else (None, False)
