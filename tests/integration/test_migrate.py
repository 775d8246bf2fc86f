"""Migrations on a real PostgreSQL: every ocicat process migrates at start, so a killed one must not block the rest."""

from __future__ import annotations

import threading

import psycopg2

from harness.processes import wait_until
from ocicat.db import Database
from ocicat.migrate import MIGRATE_LOCK, migrate


def test_a_migrator_killed_mid_migrate_does_not_lock_out_later_starts(make_database):
    """A process SIGKILLed while migrating leaves yoyo's lock row behind (the fault test's worker kills hit start-up
    under load); the next process must still start instead of timing out on a dead process's lock."""
    url = make_database()
    db = Database(url, maxconn=1)
    try:
        with db.transaction() as cur:
            cur.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")
        assert migrate(url) == []  # nothing pending; it returned instead of raising LockTimeout
        with db.transaction() as cur:
            cur.execute("SELECT count(*) AS n FROM yoyo_lock")
            assert cur.fetchone()["n"] == 0
    finally:
        db.close()


def test_a_process_waiting_to_migrate_does_not_stall_a_concurrent_index_build(make_database):
    """Migrations build indexes concurrently (0025), and such a build waits for every snapshot older than its own.
    A process that starts while another migrates waits for the migration lock; waiting in a statement would hold a
    snapshot, so the build would wait for the waiter and the waiter for the migrator, for ever. It polls instead."""
    url = make_database()
    holder = psycopg2.connect(url)
    holder.autocommit = True
    builder = psycopg2.connect(url)
    builder.autocommit = True
    waiter = threading.Thread(target=migrate, args=(url,))
    try:
        with holder.cursor() as cur:  # a migrator at work
            cur.execute(f"SELECT pg_advisory_lock({MIGRATE_LOCK})")
            waiter.start()
            # the waiter has asked for the lock (a session of its own that has run a statement naming it)
            wait_until(lambda: cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                           " AND pid <> pg_backend_pid() AND query LIKE %s",
                                           (f"%advisory_lock({MIGRATE_LOCK})%",)) or cur.fetchone()[0] > 0,
                       what="the second migrate to ask for the migration lock")
        with builder.cursor() as cur:  # what the migrator does meanwhile; with a snapshot held, it waits
            cur.execute("SET statement_timeout = '10s'")
            cur.execute("CREATE INDEX CONCURRENTLY test_concurrent_idx ON repositories (created_at)")
        assert waiter.is_alive()
    finally:
        holder.close()  # the migrator done: the waiter migrates (nothing pending) and returns
        waiter.join(timeout=30)
        builder.close()
    assert not waiter.is_alive()
