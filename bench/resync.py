#!/usr/bin/env python
"""Resync benchmark: how fast `ocicat resync` builds a catalog from a registry it never heard from, against the
bare crawl of the same registry.

    .venv/bin/python bench/resync.py [--count 10000] [--repositories 100] [--concurrency 8] [--impossible-targets]

A real CNCF registry (no notifications) gets ``--count`` image manifests over
``--repositories`` repositories, one tag each, each manifest with an image
config of its own (as every build has) and its repository's layer. Each
repository's layer and first manifest (with its config) are pushed through
the registry's API; the other manifests and their configs are written
straight into the registry's filesystem storage, exactly as the registry laid
out that first one: a blob and its link files each. Pushing 10,000 manifests
through the API costs about 100 s on two cores (the registry checks every
blob a manifest names); the storage way takes a few seconds, and the crawl
then reads every one of them back through the registry's API. Then, for the
registry as shipped and again restarted with ``GOGC=400`` (on these two cores
the registry, ocicat and PostgreSQL share, its garbage collector costs about
half its CPU per request at Go's default):

1. The bare crawl: the registry GETs a crawl makes (``_catalog`` pages, every
   tags list, every manifest by tag and its config blob) and nothing else,
   ``--concurrency`` repositories at once and their manifests on a shared pool
   of as many threads, as ``ocicat resync`` fetches them.
2. ``ocicat resync`` (a real process, wall clock from spawn to exit) into an
   empty catalog: the same GETs, plus extracting and indexing every manifest.
   Target: 10,000 in under 60 s, every manifest and tag in the catalog.

Last, ``ocicat resync`` again on the now complete catalog: the cost of a
periodic reconcile that finds nothing to do. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from bench.common import Run, add_run_arguments, print_header, run_bounded, scalar  # noqa: E402
from harness.oci import push_blob, push_manifest  # noqa: E402
from harness.postgres import admin  # noqa: E402
from harness.processes import OCICAT  # noqa: E402
from harness.registry import Registry  # noqa: E402
from indexer.registry import LIST_PAGE_SIZE  # noqa: E402
from ocicat.oci.media_types import IMAGE_CONFIG_TYPES, OCI_MANIFEST  # noqa: E402

TARGET_SECONDS, TARGET_COUNT = 60.0, 10_000  # and as long again for each 10,000 more
PUSH_THREADS = 8
TUNED_GOGC = 400


class ResyncBench(Run):
    """A registry nobody is notified of, filled outside ocicat, then crawled by ``ocicat resync``."""

    name = "resync"

    def setup(self) -> None:
        admin(self.args.database_server, f"CREATE DATABASE {self.db_name}")
        self.db_created = True
        self.registry = Registry().start()  # nobody is notified: the catalog learns only by crawling
        subprocess.run([*OCICAT, "migrate"], env=self.env(), cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)

    def push_repository(self, index: int, per_repository: int) -> int:
        session = requests.Session()
        session.trust_env = False
        repository = f"resync/app-{index:04d}"
        layer = f"layer of {repository}".encode()
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                   "digest": push_blob(self.registry.url, repository, layer, session), "size": len(layer)}]
        for n in range(per_repository):
            tag = f"1.0.{n}"
            config = json.dumps({"architecture": "amd64", "os": "linux", "created": f"2026-01-01T00:00:{n % 60:02d}Z",
                                 "config": {"Labels": {"app": repository, "version": tag}},
                                 "rootfs": {"type": "layers", "diff_ids": []}}).encode()
            first = n == 0  # through the API: the registry lays out the repository itself
            digest = (push_blob(self.registry.url, repository, config, session) if first
                      else self.store_blob(repository, config))
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": IMAGE_CONFIG_TYPES[0], "digest": digest, "size": len(config)},
                        "layers": layers, "annotations": {"org.opencontainers.image.version": tag}}
            if first:
                push_manifest(self.registry.url, repository, tag, manifest, OCI_MANIFEST, session)
            else:
                self.store_manifest(repository, tag, json.dumps(manifest).encode())
        return per_repository

    def _storage(self) -> Path:
        return self.registry.dir / "data" / "docker" / "registry" / "v2"

    def _write_blob(self, body: bytes) -> str:
        hexdigest = hashlib.sha256(body).hexdigest()
        blob = self._storage() / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(body)
        return hexdigest

    @staticmethod
    def _link(path: Path, hexdigest: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"sha256:{hexdigest}")

    def store_blob(self, repository: str, body: bytes) -> str:
        """Write a blob of ``repository`` the way Distribution's filesystem driver stores an upload."""
        hexdigest = self._write_blob(body)
        self._link(self._storage() / "repositories" / repository / "_layers" / "sha256" / hexdigest / "link", hexdigest)
        return f"sha256:{hexdigest}"

    def store_manifest(self, repository: str, tag: str, body: bytes) -> None:
        """Write a manifest and its tag the way Distribution's filesystem driver stores them."""
        hexdigest = self._write_blob(body)
        manifests = self._storage() / "repositories" / repository / "_manifests"
        for path in (manifests / "revisions" / "sha256" / hexdigest / "link",
                     manifests / "tags" / tag / "current" / "link",
                     manifests / "tags" / tag / "index" / "sha256" / hexdigest / "link"):
            self._link(path, hexdigest)

    def bare_crawl(self) -> tuple[float, int]:
        """The registry GETs of a crawl and nothing else, fetched as ``ocicat resync`` fetches them: seconds and
        manifests fetched."""
        base = self.registry.url
        local = threading.local()

        def get(url: str, **kwargs) -> requests.Response:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                local.session.trust_env = False
            response = local.session.get(url, timeout=30, **kwargs)
            response.raise_for_status()
            return response

        def pages(path: str, key: str) -> list[str]:
            names, last = [], None
            while True:
                body = get(f"{base}/v2/{path}", params={"n": LIST_PAGE_SIZE, **({"last": last} if last else {})}).json()
                names += body[key] or []
                if len(body[key] or []) < LIST_PAGE_SIZE:
                    return names
                last = names[-1]

        def fetch(repository: str, tag: str) -> int:
            manifest = get(f"{base}/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}).json()
            get(f"{base}/v2/{repository}/blobs/{manifest['config']['digest']}").content
            return 1

        concurrency = self.args.concurrency
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as repositories, ThreadPoolExecutor(concurrency) as fetches:
            def crawl(repository: str) -> int:
                tags = pages(f"{repository}/tags/list", "tags")
                return sum(fetches.map(lambda tag: fetch(repository, tag), tags))

            fetched = sum(repositories.map(crawl, pages("_catalog", "repositories")))
        return time.monotonic() - started, fetched

    def resync(self, label: str) -> tuple[float, str]:
        started = time.monotonic()
        result = subprocess.run([*OCICAT, "resync", "--no-progress", "--concurrency", str(self.args.concurrency)],
                                env=self.env(), cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=self.args.time_limit)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            raise RuntimeError(f"resync ({label}) exited {result.returncode}:\n{result.stdout}{result.stderr[-3000:]}")
        return seconds, result.stdout.strip().splitlines()[-1]

    def run(self) -> None:
        args = self.args
        print_header("resync", self.run_id, args.database_server)
        per_repository = -(-args.count // args.repositories)
        total = per_repository * args.repositories
        print(f"setup:           {total} image manifests over {args.repositories} repositories, one tag each; "
              f"resync concurrency {args.concurrency}")
        self.setup()
        print()
        started = time.monotonic()
        with ThreadPoolExecutor(PUSH_THREADS) as pool:
            pushed = sum(pool.map(lambda i: self.push_repository(i, per_repository), range(args.repositories)))
        push_seconds = time.monotonic() - started
        print(f"[push]  {pushed} manifests (+{pushed + args.repositories} blobs: a config each, a layer per "
              f"repository) in {push_seconds:.1f} s -> {pushed / push_seconds:.0f} manifests/s")

        settings = (("registry as shipped", None), (f"registry with GOGC={TUNED_GOGC}", TUNED_GOGC))
        for n, (setting, gogc) in enumerate(settings):
            if gogc is not None:
                # The registry's Go runtime collects garbage each time its small heap doubles (GOGC=100): on two
                # cores it shares with ocicat and PostgreSQL, that is about half its CPU per request. A registry on
                # its own machine, or run with a larger GOGC, leaves the crawl its share of the cores.
                self.registry.stop()
                self.registry.env = {"GOGC": str(gogc)}
                self.registry.start()
                with self.db().cursor() as cur:
                    cur.execute("TRUNCATE repositories, resync_checkpoints CASCADE")
            self.crawl_and_resync(f"[{n + 1}/3]", setting, pushed)
        warm, summary = self.resync("complete catalog")
        print(f"[3/3]   resync of the complete catalog (nothing to do): {warm:.1f} s -> {pushed / warm:.0f} manifests/s")
        print(f"        {summary}")

    def crawl_and_resync(self, step: str, setting: str, pushed: int) -> None:
        """The bare crawl, then ``ocicat resync`` into an empty catalog, on the registry as it runs now."""
        bare, fetched = self.bare_crawl()
        if fetched != pushed:
            raise RuntimeError(f"the bare crawl fetched {fetched} manifests of {pushed}")
        print(f"{step}   {setting}: bare crawl (GETs only) {bare:.1f} s -> {pushed / bare:.0f} manifests/s")
        seconds, summary = self.resync(f"empty catalog, {setting}")
        conn = self.db()
        indexed = scalar(conn, "SELECT count(*) FROM manifests")
        tags = scalar(conn, "SELECT count(*) FROM tags WHERE digest IS NOT NULL")
        verdict = self.targets.at_most(f"{pushed} manifests resynced into an empty catalog, {setting}", seconds,
                                       TARGET_SECONDS * max(1.0, pushed / TARGET_COUNT), " s")
        print(f"        ocicat resync into an empty catalog: {seconds:.1f} s from spawn to exit -> "
              f"{pushed / seconds:.0f} manifests/s = {100 * bare / seconds:.0f}% of the bare crawl's rate: {verdict}")
        print(f"        {summary}")
        complete = self.targets.holds(f"resync, {setting}: {indexed} manifests and {tags} tags in the catalog of "
                                      f"{pushed} pushed", indexed == pushed == tags)
        print(f"        catalog: {indexed} manifests, {tags} tags of {pushed}: {complete}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="manifests to push and resync (default 10000)")
    parser.add_argument("--repositories", type=int, default=100, help="repositories they are spread over (default 100)")
    parser.add_argument("--concurrency", type=int, default=8, help="ocicat resync --concurrency (default 8)")
    add_run_arguments(parser, time_limit=900.0)
    args = parser.parse_args()
    if args.count < 1 or args.repositories < 1 or args.concurrency < 1:
        parser.error("--count, --repositories and --concurrency must be at least 1")
    return run_bounded(ResyncBench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
