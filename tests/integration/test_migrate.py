"""Migrations on a real PostgreSQL: every ocicat process migrates at start, so a killed one must not block the rest."""

from __future__ import annotations

from ocicat.db import Database
from ocicat.migrate import migrate


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
