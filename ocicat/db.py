"""PostgreSQL connections: a pool handing out one transaction at a time, and the embedded server.

With ``OCICAT_DATABASE_URL`` unset, ocicat runs its own PostgreSQL under the
data directory (the ``pgserver`` package ships the server binaries), so a
single machine needs nothing installed beforehand.
"""

from __future__ import annotations

import logging
import select
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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

    def __init__(self, url: str, maxconn: int = 10, synchronous_commit: bool = True):
        self.url = url
        options = SESSION_DEFAULTS["options"] + ("" if synchronous_commit else " -c synchronous_commit=off")
        # psycopg2 keeps at most ``minconn`` idle connections and closes the
        # rest on return: minconn == maxconn makes every connection reused
        # instead of reopened per transaction (it also opens them up front).
        self._pool = psycopg2.pool.ThreadedConnectionPool(maxconn, maxconn, url, **{**SESSION_DEFAULTS, "options": options})
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
