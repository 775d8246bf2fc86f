"""What ocicat writes at ingest now but did not when earlier charts were indexed, written by the workers in the
background, a batch per transaction, once: READMEs rendered to HTML (migration 0010), Helm index entries
(migration 0014) and upgrade reports (migration 0015). And, at every start, the template contents that no version
lists any more (their versions deleted) removed.

Every worker makes one pass of each in id order when it starts, skipping what another holds; a README that cannot
be rendered (too large, too deeply nested) stays text and is only looked at again by the next start.
"""

from __future__ import annotations

import logging
import threading

from ocicat.catalog import upgrades, writes
from ocicat.db import Database

from .readme import MAX_README_CHARS, readme_html

log = logging.getLogger(__name__)

BATCH = 100


def run(db: Database, stop: threading.Event) -> dict[str, int]:
    """One pass of each; how many of each it wrote. Failures are logged: the next start tries again."""
    return {"readmes": readmes(db, stop), "index entries": index_entries(db, stop),
            "upgrade reports": _batches(db, stop, upgrades.write_missing_reports, "upgrade reports"),
            "unlisted contents": unlisted_sources(db, stop)}


def readmes(db: Database, stop: threading.Event) -> int:
    after, rendered = 0, 0
    try:
        while not stop.is_set():
            with db.transaction() as cur:
                rows = writes.readmes_to_render(cur, after, MAX_README_CHARS, BATCH)
                for row in rows:
                    html = readme_html(row["readme"])
                    writes.set_readme_html(cur, row["manifest_id"], html)
                    rendered += html is not None
            if len(rows) < BATCH:
                break
            after = rows[-1]["manifest_id"]
    except Exception:  # noqa: BLE001 - the worker goes on; the next start tries again
        log.warning("rendering the READMEs of earlier charts failed", exc_info=True)
    if rendered:
        log.info("rendered %d README(s) of charts indexed before READMEs were rendered at ingest", rendered)
    return rendered


def unlisted_sources(db: Database, stop: threading.Event) -> int:
    after, deleted = b"", 0
    try:
        while after is not None and not stop.is_set():
            with db.transaction() as cur:
                after, batch = writes.delete_unlisted_sources(cur, after, 10 * BATCH)
            deleted += batch
    except Exception:  # noqa: BLE001 - the worker goes on; the next start tries again
        log.warning("removing template contents no version lists failed", exc_info=True)
    if deleted:
        log.info("removed %d template content(s) that no chart version lists any more", deleted)
    return deleted


def index_entries(db: Database, stop: threading.Event) -> int:
    return _batches(db, stop, writes.write_index_entries, "Helm index entries")


def _batches(db: Database, stop: threading.Event, write, what: str) -> int:
    """``write(cur, BATCH)`` a transaction at a time until it writes less than a batch."""
    written = 0
    try:
        while not stop.is_set():
            with db.transaction() as cur:
                batch = write(cur, BATCH)
            written += batch
            if batch < BATCH:
                break
    except Exception:  # noqa: BLE001 - the worker goes on; the next start tries again
        log.warning("writing the %s of earlier charts failed", what, exc_info=True)
    if written:
        log.info("wrote the %s of %d chart version(s) indexed before they were written at ingest", what, written)
    return written
