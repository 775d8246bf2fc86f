"""Schema migrations: numbered SQL files in ``migrations/`` applied once (yoyo), then every SQL function
in ``migrations/functions/`` created or replaced, so that a function's current body is in one file.

The numbered migrations that first created a function keep their original
body (a shipped migration never changes); the function files replace it on
every migrate. A function whose signature changes is dropped by a numbered
migration and defined anew in its file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from yoyo import get_backend, read_migrations

import migrations

from .db import connect

log = logging.getLogger(__name__)

# ``migrations`` is a namespace package: SQL files only, nothing for yoyo to mistake for a migration.
MIGRATIONS_DIR = Path(migrations.__path__[0])
FUNCTIONS_DIR = MIGRATIONS_DIR / "functions"
logging.getLogger("yoyo").setLevel(logging.WARNING)
# The advisory lock that serializes migrators (see migrate), and how often a waiting one tries it.
MIGRATE_LOCK = "hashtextextended('ocicat.migrate', 0)"
LOCK_POLL_SECONDS = 0.2


def migrate(database_url: str) -> list[str]:
    """Apply every pending migration and replace every function; return the migration ids applied.

    Every ocicat process migrates at start, so migrators are serialized. yoyo's own lock is a row in a table,
    which a process killed mid-migrate (kill -9, an OOM kill) leaves behind, and every later start would then
    time out on it until someone ran ``yoyo break-lock``. A session-level advisory lock ends with its session:
    held around the whole migrate, it serializes migrators by itself, and a yoyo lock row found under it can
    only be a dead process's, so it is broken.

    The lock is polled, not waited for in a statement: a statement holds a snapshot while it waits, and a
    migration building an index concurrently (0025) waits for every older snapshot, so a process starting while
    it runs would wait for the migrator and the migrator for it.
    """
    guard = connect(database_url)
    try:
        guard.autocommit = True
        _lock(guard.cursor())
        backend = get_backend(database_url)
        backend.break_lock()
        found = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(found)
            backend.apply_migrations(pending)
            _replace_functions(database_url)
    finally:
        guard.close()  # releases the advisory lock
    applied = [m.id for m in pending]
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return applied


def _lock(cur) -> None:
    while True:
        cur.execute(f"SELECT pg_try_advisory_lock({MIGRATE_LOCK})")
        if cur.fetchone()[0]:
            return
        time.sleep(LOCK_POLL_SECONDS)


def _replace_functions(database_url: str) -> None:
    """Every file of ``migrations/functions/``, in one transaction (in any order: bodies are checked when called)."""
    conn = connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL check_function_bodies = off")
            for path in sorted(FUNCTIONS_DIR.glob("*.sql")):
                cur.execute(path.read_text())
    finally:
        conn.close()
