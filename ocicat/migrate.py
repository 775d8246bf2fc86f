"""Schema migrations with yoyo: numbered SQL files in ``migrations/``."""

from __future__ import annotations

import logging
from pathlib import Path

import migrations
from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

# ``migrations`` is a namespace package: SQL files only, nothing for yoyo to mistake for a migration.
MIGRATIONS_DIR = Path(migrations.__path__[0])
logging.getLogger("yoyo").setLevel(logging.WARNING)


def migrate(database_url: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date)."""
    backend = get_backend(database_url)
    found = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(found)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    return applied
