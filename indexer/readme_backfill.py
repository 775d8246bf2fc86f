"""READMEs of charts indexed before ocicat rendered them at ingest (migration 0010): rendered by the workers,
in the background, a batch per transaction, once.

Every worker makes one pass in id order when it starts, skipping what
another holds; a README that cannot be rendered (too large, too deeply
nested) stays text and is only looked at again by the next start.
"""

from __future__ import annotations

import logging
import threading

from ocicat.catalog import writes
from ocicat.db import Database

from .readme import MAX_README_CHARS, readme_html

log = logging.getLogger(__name__)

BATCH = 100


def run(db: Database, stop: threading.Event) -> int:
    """One pass; how many READMEs it rendered. Failures are logged: the next start tries again."""
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
