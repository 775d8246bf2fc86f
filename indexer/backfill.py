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
    return {
        "readmes": _pass(db, stop, _render_readmes, 0, "rendered %d README(s) of earlier charts"),
        "index entries": _pass(db, stop, _until_short(writes.write_index_entries), 0,
                               "wrote the Helm index entries of %d earlier chart version(s)"),
        "upgrade reports": _pass(db, stop, _until_short(upgrades.write_missing_reports), 0,
                                 "wrote the upgrade reports of %d earlier chart version(s)"),
        "unlisted contents": _pass(db, stop, lambda cur, after: writes.delete_unlisted_sources(cur, after, 10 * BATCH),
                                   b"", "removed %d template content(s) no chart version lists any more"),
    }


def _pass(db: Database, stop: threading.Event, step, start, done_message: str) -> int:
    """``step(cur, after) -> (next after, or None at the end; how many)`` a transaction at a time, from ``start``;
    how many in all, logged with ``done_message``."""
    after, done = start, 0
    try:
        while after is not None and not stop.is_set():
            with db.transaction() as cur:
                after, count = step(cur, after)
            done += count
    except Exception:  # noqa: BLE001 - the worker goes on; the next start tries again
        log.warning("backfill failed (the next start tries again); it had " + done_message, done, exc_info=True)
    if done:
        log.info(done_message, done)
    return done


def _render_readmes(cur, after: int) -> tuple[int | None, int]:
    """A batch of READMEs after manifest id ``after``; one that cannot be rendered stays text (and uncounted)."""
    rows = writes.readmes_to_render(cur, after, MAX_README_CHARS, BATCH)
    rendered = 0
    for row in rows:
        html = readme_html(row["readme"])
        writes.set_readme_html(cur, row["manifest_id"], html)
        rendered += html is not None
    return (rows[-1]["manifest_id"] if len(rows) == BATCH else None), rendered


def _until_short(write):
    """A step of ``write(cur, BATCH)``, which skips what it did (or another worker holds): done at a short batch."""
    def step(cur, _after) -> tuple[int | None, int]:
        count = write(cur, BATCH)
        return (0 if count == BATCH else None), count
    return step
