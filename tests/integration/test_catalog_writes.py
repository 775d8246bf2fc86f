"""The catalog writes' ordering rules, checked over every order in which events can be applied.

Worker threads race for a repository's lock and retries reorder events, so
any permutation can happen. A push applied after the delete of its manifest
finds the registry without it (404) and writes nothing; that is modelled here.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from ocicat.catalog import writes
from ocicat.oci.classify import classify

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64

# The registry's own history, in the order it happened:
HISTORY = [
    ("push", A, "v0", 1),   # push A as v0
    ("push", A, "v1", 2),   # tag v1 -> A
    ("push", B, "v1", 3),   # retag v1 -> B (the usual "move latest" step)
    ("delete", A, None, 4),  # delete the old digest ...
    ("untag", None, "v0", 5),  # ... and the registry untags v0, which still pointed at A
]
EXPECTED = {"tags": {"v1": B}, "manifests": {B}}


def _apply(cur, repository_id, event, deleted):
    action, digest, tag, tick = event
    at = T0 + timedelta(seconds=tick)
    if action == "push":
        if digest in deleted:
            return  # the worker's fetch would find it gone
        if not writes.touch_manifest(cur, repository_id, digest, at):
            doc = {"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}, "layers": []}
            writes.save_manifest(cur, repository_id, digest, 10, doc, classify(None, doc), at, writes.Details())
        writes.set_tag(cur, repository_id, tag, digest, at)
    elif action == "delete":
        deleted.add(digest)
        writes.delete_manifest(cur, repository_id, digest, at)
    else:
        writes.set_tag(cur, repository_id, tag, None, at)


def _state(cur, repository_id):
    cur.execute("SELECT name, digest FROM tags WHERE repository_id = %s AND digest IS NOT NULL", (repository_id,))
    tags = {r["name"]: r["digest"] for r in cur.fetchall()}
    cur.execute("SELECT digest FROM manifests WHERE repository_id = %s", (repository_id,))
    return {"tags": tags, "manifests": {r["digest"] for r in cur.fetchall()}}


def test_every_application_order_converges_on_the_registry_state(db):
    with db.transaction() as cur:
        repository_id = writes.ensure_repository(cur, "perm/app", T0)
        outcomes = {}
        for order in itertools.permutations(HISTORY):
            cur.execute("SAVEPOINT trial")
            deleted: set[str] = set()
            for event in order:
                _apply(cur, repository_id, event, deleted)
            state = _state(cur, repository_id)
            if state != EXPECTED:
                outcomes[tuple(e[0] + (e[2] or "") + (e[1] or "")[-1:] for e in order)] = state
            cur.execute("ROLLBACK TO SAVEPOINT trial")
    assert outcomes == {}, f"{len(outcomes)} orders diverge, e.g. {next(iter(outcomes.items()))}"
