#!/usr/bin/env python
"""Resync benchmark: how fast `ocicat resync` builds a catalog from a registry it never heard from.

    .venv/bin/python bench/resync.py [--count 10000] [--repositories 100] [--concurrency 8]

A real CNCF registry (no notifications) gets ``--count`` image manifests over
``--repositories`` repositories, one tag each. Each repository gets one
config blob, one layer blob and its first manifest pushed through the
registry's API; the other manifests (each with its own annotation, so its
own digest) are written straight into the registry's filesystem storage,
exactly as the registry laid out that first one: a blob and three link
files each. Pushing 10,000 manifests through the API costs about 100 s on
two cores (the registry checks every blob a manifest names); the storage
way takes a few seconds, and the crawl then reads every one of them back
through the registry's API. Then, against an empty catalog:

1. ``ocicat resync`` (a real process, wall clock from spawn to exit) crawls
   ``_catalog`` and every tags list, GETs every manifest by tag and its image
   config, and indexes them: manifests resynced per second, target 10,000 in
   under 60 s. The registry runs as shipped.
2. The same into an emptied catalog, with the registry restarted with
   ``GOGC=400``: on these two cores the registry, ocicat and PostgreSQL share,
   the registry's garbage collector costs about half its CPU per request at
   Go's default, and the crawl waits on the registry.
3. ``ocicat resync`` again on the now complete catalog: the cost of a
   periodic reconcile that finds nothing to do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
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
from ocicat.oci.media_types import IMAGE_CONFIG_TYPES, OCI_MANIFEST  # noqa: E402

TARGET_SECONDS = 60.0
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
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"app": repository}},
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = f"layer of {repository}".encode()
        descriptors = {
            "config": {"mediaType": IMAGE_CONFIG_TYPES[0],
                       "digest": push_blob(self.registry.url, repository, config, session), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": push_blob(self.registry.url, repository, layer, session), "size": len(layer)}],
        }
        for n in range(per_repository):
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, **descriptors,
                        "annotations": {"org.opencontainers.image.version": f"1.0.{n}"}}
            if n == 0:  # through the API: the registry lays out the repository itself
                push_manifest(self.registry.url, repository, f"1.0.{n}", manifest, OCI_MANIFEST, session)
            else:
                self.store_manifest(repository, f"1.0.{n}", json.dumps(manifest).encode())
        return per_repository

    def store_manifest(self, repository: str, tag: str, body: bytes) -> None:
        """Write a manifest and its tag the way Distribution's filesystem driver stores them."""
        root = self.registry.dir / "data" / "docker" / "registry" / "v2"
        hexdigest = hashlib.sha256(body).hexdigest()
        link = f"sha256:{hexdigest}"
        blob = root / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(body)
        manifests = root / "repositories" / repository / "_manifests"
        for path in (manifests / "revisions" / "sha256" / hexdigest / "link",
                     manifests / "tags" / tag / "current" / "link",
                     manifests / "tags" / tag / "index" / "sha256" / hexdigest / "link"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(link)

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
        print(f"[push]  {pushed} manifests (+{2 * args.repositories} blobs) in {push_seconds:.1f} s -> "
              f"{pushed / push_seconds:.0f} manifests/s")

        cold, summary = self.resync("empty catalog")
        self.report("[1/3]   resync into an empty catalog, registry as shipped", cold, summary, pushed)
        # The registry's Go runtime collects garbage each time its small heap doubles (GOGC=100): on two cores it
        # shares with ocicat and PostgreSQL, that is about half its CPU per request. A registry on its own
        # machine, or run with a larger GOGC, leaves the crawl its share of the cores.
        self.registry.stop()
        self.registry.env = {"GOGC": str(TUNED_GOGC)}
        self.registry.start()
        with self.db().cursor() as cur:
            cur.execute("TRUNCATE repositories, resync_checkpoints CASCADE")
        tuned, summary = self.resync("empty catalog, tuned registry")
        indexed, tags = self.report(f"[2/3]   again into an emptied catalog, registry with GOGC={TUNED_GOGC}", tuned,
                                    summary, pushed)
        warm, summary = self.resync("complete catalog")
        print(f"[3/3]   resync of the complete catalog (nothing to do): {warm:.1f} s -> {pushed / warm:.0f} manifests/s")
        print(f"        {summary}")
        print()
        print("summary")
        for label, seconds in (("registry as shipped", cold), (f"registry with GOGC={TUNED_GOGC}", tuned)):
            print(f"      {pushed} manifests resynced in {seconds:.1f} s ({label}) vs target {TARGET_SECONDS:.0f} s: "
                  f"{'PASS' if seconds <= TARGET_SECONDS and indexed == pushed else 'FAIL'}")
        if indexed != pushed or tags != pushed:
            print(f"      WARNING: {indexed} manifests and {tags} tags indexed of {pushed}")

    def report(self, label: str, seconds: float, summary: str, pushed: int) -> tuple[int, int]:
        """Print one crawl into an empty catalog; what the catalog then holds (manifests, live tags)."""
        conn = self.db()
        indexed = scalar(conn, "SELECT count(*) FROM manifests")
        tags = scalar(conn, "SELECT count(*) FROM tags WHERE digest IS NOT NULL")
        print(f"{label}: {seconds:.1f} s from spawn to exit -> {pushed / seconds:.0f} manifests/s")
        print(f"        {summary}")
        print(f"        catalog: {indexed} manifests, {tags} tags")
        return indexed, tags


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
