"""Resync: a crawl of a real registry repairs a catalog that lost events, and never undoes a newer event."""

from __future__ import annotations

import subprocess
import threading
import uuid
from datetime import datetime, timezone

import requests

from harness.events import fresh_push_event
from harness.oci import push_image, push_manifest
from harness.processes import OCICAT, REPO_ROOT, Ocicat, wait_http, wait_until
from indexer import resync
from indexer.bus import PostgresQueue
from indexer.indexing import EventIndexer
from indexer.registry import RegistryClient
from indexer.resync import Resync, run_periodically
from ocicat.errors import PermanentError
from ocicat.events import Event

from .probes import catalog_manifests, catalog_tags, registry_tags, tag_digest
from .stack import start_stack, stop_stack


def _below(state: dict, namespace: str) -> dict:
    return {name: tags for name, tags in state.items() if name.startswith(namespace + "/")}


def test_resync_repairs_a_catalog_that_lost_events(make_database, tmp_path):
    """The receiver is down while images are pushed, moved and deleted, and the registry restarts meanwhile
    (its in-memory queue of notifications is gone); `ocicat resync` brings the catalog to the registry's state."""
    stack = start_stack(make_database, tmp_path, OCICAT_DEFAULT_VISIBILITY="public")
    try:
        ns = f"lost-{uuid.uuid4().hex[:8]}"
        registry = stack.registry.url
        push_image(registry, f"{ns}/kept", "v1")
        push_image(registry, f"{ns}/moved", "v1", seed="old")
        doomed = push_image(registry, f"{ns}/doomed", "v1")
        wait_until(lambda: len(_below(catalog_tags(stack.db), ns)) == 3, timeout=60, what="the first pushes indexed")

        stack.server.stop()
        added = push_image(registry, f"{ns}/added", "v1")
        moved = push_image(registry, f"{ns}/moved", "v1", seed="new")
        assert requests.delete(f"{registry}/v2/{ns}/doomed/manifests/{doomed}", timeout=10).status_code == 202
        stack.registry.stop()
        stack.registry.start()
        stack.server = Ocicat("serve", stack.env, tmp_path / "serve-again.log").start()
        wait_http(f"{stack.api}/healthz", timeout=30)

        truth = _below(registry_tags(registry), ns)
        assert truth == {f"{ns}/kept": {"v1": tag_digest(stack.db, f"{ns}/kept", "v1")}, f"{ns}/moved": {"v1": moved},
                         f"{ns}/added": {"v1": added}}
        assert _below(catalog_tags(stack.db), ns) != truth  # the events really were lost

        result = subprocess.run([*OCICAT, "resync", "--namespace", ns, "--no-progress"], env=stack.env, cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _below(catalog_tags(stack.db), ns) == truth
        assert (f"{ns}/doomed", doomed) not in catalog_manifests(stack.db)
        assert stack.tags(f"{ns}/added")["v1"]["kind"] == "image"  # indexed in full, visible in the API
        assert stack.get(f"/api/v1/repositories/{ns}/doomed/-/tags").status_code == 404
        assert "4 repositories" in result.stdout and "2 removed" in result.stdout  # doomed's tag and manifest

        again = subprocess.run([*OCICAT, "resync", "--namespace", ns, "--no-progress"], env=stack.env, cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "0 removed" in again.stdout and "0 failed" in again.stdout
        assert _below(catalog_tags(stack.db), ns) == truth
    finally:
        stop_stack(stack)


class Interleaving(RegistryClient):
    """A registry client that runs ``hooks[tag]`` right after the crawl read that tag (or, for key None, right
    after it listed the tags): the registry changes, and its event is applied, in the middle of the crawl."""

    def __init__(self, url: str, hooks: dict):
        super().__init__(url)
        self.hooks = hooks

    def get_tagged_manifest(self, repository, tag):
        seen = super().get_tagged_manifest(repository, tag)
        self.hooks.pop(tag, lambda: None)()
        return seen

    def list_tags(self, repository, page_size=1000):
        tags = list(super().list_tags(repository, page_size))
        self.hooks.pop(None, lambda: None)()
        return iter(tags)


def _apply_event(db, registry, raw: dict) -> None:
    """The event through the PostgreSQL queue and the worker's indexer, in this process."""
    queue = PostgresQueue(db)
    queue.publish([Event.load(raw)], [])
    assert queue.process_one(EventIndexer(db, RegistryClient(registry.url)))


def _delete_event(repository: str, digest: str) -> dict:
    return {"id": str(uuid.uuid4()), "timestamp": datetime.now(timezone.utc).isoformat(), "action": "delete",
            "target": {"repository": repository, "digest": digest}}


def test_a_crawl_never_undoes_an_event_newer_than_its_observation(db, registry):
    repository = f"race-{uuid.uuid4().hex[:8]}/app"
    first = push_image(registry.url, repository, "v1", seed="1")
    _apply_event(db, registry, fresh_push_event(repository, first, "v1"))

    def move_v1():  # after the crawl saw v1 at `first`, v1 moves, and the worker applies that event
        second = push_image(registry.url, repository, "v1", seed="2")
        _apply_event(db, registry, fresh_push_event(repository, second, "v1"))
        moved.append(second)

    def push_late():  # after the crawl listed the tags, a new tag is pushed and indexed
        digest = push_image(registry.url, repository, "late", seed="3")
        _apply_event(db, registry, fresh_push_event(repository, digest, "late"))
        late.append(digest)

    moved, late = [], []
    summary = Resync(db, Interleaving(registry.url, {"v1": move_v1, None: push_late}), concurrency=1).run(repository)
    assert moved and late and not summary.failed
    # The crawl saw v1 at `first` and no `late` tag, but both events are newer than what it saw.
    assert tag_digest(db, repository, "v1") == moved[0]
    assert tag_digest(db, repository, "late") == late[0]


def test_a_stale_event_arriving_after_a_crawl_does_not_undo_what_the_crawl_saw(db, registry):
    repository = f"stale-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(registry.url, repository, "v1", seed="same")
    _apply_event(db, registry, fresh_push_event(repository, digest, "v1"))
    assert requests.delete(f"{registry.url}/v2/{repository}/manifests/{digest}", timeout=10).status_code == 202
    delayed_delete = _delete_event(repository, digest)  # its delivery is late
    assert push_image(registry.url, repository, "v1", seed="same") == digest  # pushed again: that event is lost

    assert not Resync(db, RegistryClient(registry.url), concurrency=1).run(repository).failed
    _apply_event(db, registry, delayed_delete)  # older than what the crawl saw: the registry has it again
    assert tag_digest(db, repository, "v1") == digest
    assert (repository, digest) in catalog_manifests(db)


def test_a_repository_of_several_chunks_is_fetched_in_parallel_and_converges(db, registry, monkeypatch):
    """Tags are fetched on the shared pool and written a chunk per transaction; the seams lose nothing."""
    monkeypatch.setattr(resync, "CHUNK", 3)
    repository = f"chunks-{uuid.uuid4().hex[:8]}/app"
    digests = [push_image(registry.url, repository, f"v{i}", seed=str(i)) for i in range(8)]
    for i in (0, 7):  # known to the catalog before the crawl ...
        _apply_event(db, registry, fresh_push_event(repository, digests[i], f"v{i}"))
    gone = push_image(registry.url, repository, "gone", seed="gone")
    _apply_event(db, registry, fresh_push_event(repository, gone, "gone"))
    # ... then, with every event lost: a tag deleted, one moved, and an alias of v1 in a later chunk.
    assert requests.delete(f"{registry.url}/v2/{repository}/manifests/{gone}", timeout=10).status_code == 202
    moved = push_image(registry.url, repository, "v7", seed="moved")
    manifest = requests.get(f"{registry.url}/v2/{repository}/manifests/v1", timeout=10,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    push_manifest(registry.url, repository, "zz-alias", manifest.content, manifest.headers["Content-Type"])

    overlapped = threading.Event()

    class Counting(RegistryClient):
        in_flight = peak = 0
        lock = threading.Lock()

        def get_tagged_manifest(self, repository, tag):
            with self.lock:
                Counting.in_flight += 1
                Counting.peak = max(Counting.peak, Counting.in_flight)
                if Counting.in_flight > 1:
                    overlapped.set()
            if not overlapped.wait(5):  # the first fetch holds on until a second one runs beside it (or gives up)
                overlapped.set()
            try:
                return super().get_tagged_manifest(repository, tag)
            finally:
                with self.lock:
                    Counting.in_flight -= 1

    summary = Resync(db, Counting(registry.url), concurrency=4).run(repository)
    assert not summary.failed and summary.observed == 9 + 1 and summary.removed == 2  # `gone`: its tag and manifest
    assert catalog_tags(db)[repository] == registry_tags(registry.url)[repository]
    assert catalog_tags(db)[repository]["v7"] == moved and catalog_tags(db)[repository]["zz-alias"] == digests[1]
    assert (repository, gone) not in catalog_manifests(db)
    assert Counting.peak > 1  # one repository, several of its tags fetched at once


def test_an_interrupted_crawl_resumes_after_its_checkpoint(db, registry):
    ns = f"resume-{uuid.uuid4().hex[:8]}"
    for i in range(4):
        push_image(registry.url, f"{ns}/r{i}", "v1", seed=str(i))
    stop = threading.Event()
    done = []

    def interrupt_after_first(outcome):
        if not outcome.error:
            done.append(outcome.repository)
        stop.set()

    first = Resync(db, RegistryClient(registry.url), concurrency=1, stop=stop).run(ns, on_repository=interrupt_after_first)
    assert first.failed and all(o.error == "interrupted" for o in first.failed)
    assert 1 <= len(done) < 4 and set(catalog_tags(db)) == set(done)

    second = Resync(db, RegistryClient(registry.url), concurrency=2).run(ns)
    assert second.skipped == len(done) and not second.failed
    assert set(catalog_tags(db)) == {f"{ns}/r{i}" for i in range(4)}
    third = Resync(db, RegistryClient(registry.url), concurrency=2).run(ns)  # a finished crawl starts over
    assert third.skipped == 0 and third.repositories == 4


def test_a_repository_that_fails_every_time_does_not_hold_back_the_next_crawl(db, registry):
    ns = f"failing-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        push_image(registry.url, f"{ns}/r{i}", "v1", seed=str(i))

    class Refusing(RegistryClient):  # the real registry, but r1's manifest is refused as a bad one would be
        def get_tagged_manifest(self, repository, tag):
            if repository == f"{ns}/r1":
                raise PermanentError("refused by the test")
            return super().get_tagged_manifest(repository, tag)

    first = Resync(db, Refusing(registry.url), concurrency=2).run(ns)
    assert [o.repository for o in first.failed] == [f"{ns}/r1"]
    assert set(_below(catalog_tags(db), ns)) == {f"{ns}/r0", f"{ns}/r2"}
    second = Resync(db, RegistryClient(registry.url), concurrency=2).run(ns)
    assert second.skipped == 0 and not second.failed  # the next crawl starts from the top, r0 included
    assert set(_below(catalog_tags(db), ns)) == {f"{ns}/r{i}" for i in range(3)}


def test_a_reindex_extracts_a_manifest_once_however_many_tags_it_has(db, registry):
    repository = f"reindex-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(registry.url, repository, "v1", seed="1")
    manifest = requests.get(f"{registry.url}/v2/{repository}/manifests/v1", timeout=10,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    for tag in ("v1.0", "latest"):
        push_manifest(registry.url, repository, tag, manifest.content, manifest.headers["Content-Type"])
    assert not Resync(db, RegistryClient(registry.url), concurrency=2).run(repository).failed

    class Counting(RegistryClient):
        blobs: list[str] = []

        def get_blob(self, repository, digest, *args, **kwargs):
            Counting.blobs.append(digest)
            return super().get_blob(repository, digest, *args, **kwargs)

    summary = Resync(db, Counting(registry.url), concurrency=2, reindex=True).run(repository)
    assert not summary.failed and summary.observed == 3
    assert len(Counting.blobs) == 1  # its config, once for the three tags
    assert set(catalog_tags(db)[repository].values()) == {digest}


def test_catalog_listing_follows_pagination(registry):
    names = [f"pages-{uuid.uuid4().hex[:6]}/r{i}" for i in range(5)]
    for name in names:
        push_image(registry.url, name, "v1")
    listed = list(RegistryClient(registry.url).list_repositories(page_size=2))
    # in the registry's order, a directory walk: by path component ("busy/app" before "busy-1/app"), whatever other
    # tests left in the registry
    assert set(names) <= set(listed) and listed == sorted(listed, key=lambda name: name.split("/"))


def test_the_workers_periodic_reconcile_indexes_what_no_event_announced(db, registry):
    repository = f"periodic-{uuid.uuid4().hex[:8]}/app"
    digest = push_image(registry.url, repository, "v1")  # nobody is notified
    stop = threading.Event()
    loop = threading.Thread(target=run_periodically, args=(db, RegistryClient(registry.url), 1, 2, stop))
    loop.start()
    try:
        wait_until(lambda: tag_digest(db, repository, "v1") == digest, timeout=60, what="the reconcile to index it")
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()
