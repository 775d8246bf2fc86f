#!/usr/bin/env python
"""Web UI benchmark: what the chart page costs a reader, in headless Chromium against a real ``ocicat serve``.

    .venv/bin/python bench/ui.py [--rounds N] [--database-server URL]

A real chart (Helm's own scaffold with a README of a typical size and its
values.yaml, packaged and pushed by real Helm) goes to a real CNCF registry
that notifies ``ocicat serve``. Then Debian's Chromium (driven by Playwright,
see harness/browser.py) opens the chart page --rounds times, each in a fresh
browser context (empty cache: what a first visit costs), and as many times
again by reloading in the same context (a return visit: the ETags answer 304).
For each load it records:

- bytes transferred: every resource's encoded size on the wire, headers
  included (Chromium's Network.loadingFinished), page, styles, modules and
  API answers;
- first contentful paint (the browser's paint timing);
- metadata shown: when the page has rendered the chart's data (the UI's
  ``ocicat:rendered`` performance mark, set after the chart page is in the DOM).

Targets: under 200 KB transferred and under 300 ms to the metadata, first visit; exits 1 if one is missed.
A fresh database is created for the run and dropped at the end; every process
started here is stopped, also on failure or timeout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from bench.common import (  # noqa: E402
    BenchResources,
    Targets,
    add_run_arguments,
    machine_and_versions,
    percentile,
    run_bounded,
)
from harness.browser import launch  # noqa: E402
from harness.helm import helm_push, make_chart  # noqa: E402
from harness.postgres import admin, database_url_on  # noqa: E402
from harness.processes import Ocicat, free_port, python_env, wait_http, wait_until  # noqa: E402
from harness.registry import Registry  # noqa: E402

BYTES_TARGET = 200 * 1000
RENDER_TARGET_MS = 300.0
NAMESPACE = "uibench/charts"
CHART, VERSION = "webapp", "1.4.2"
# A README of the size public charts have (a few KiB of prose, a parameter table, code blocks).
README = "\n".join(
    ["# webapp", "", "A web application chart: deployment, service, ingress and autoscaling.", "", "## Installing", "",
     "```console", f"helm install my-release oci://registry.example/{NAMESPACE}/{CHART}", "```", "", "## Parameters", "",
     "| Name | Description | Default |", "|------|-------------|---------|"]
    + [f"| `section{i}.value` | What setting {i} changes, and when to change it | `{i}` |" for i in range(60)]
    + ["", "## Upgrading", "", "See [the changelog](https://example.com/webapp/changes) before upgrading."]
)

READ_TIMINGS = """() => ({
  fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
  shown: performance.getEntriesByName('ocicat:rendered')[0]?.startTime ?? null,
})"""


class Bench(BenchResources):
    def __init__(self, args):
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ocicat-bench-ui-"))
        self.db_name = f"ocicat_bench_ui_{uuid.uuid4().hex[:8]}"
        self.db_url = database_url_on(args.database_server, self.db_name)
        self.db_created = False
        self.registry: Registry | None = None
        self.processes: list[Ocicat] = []
        self.conn = None
        self.failed = False
        self.playwright = None
        self.targets = Targets(args.impossible_targets)

    def cleanup(self) -> None:
        if self.playwright is not None:
            self.playwright.stop()
        super().cleanup()

    def serve(self) -> str:
        """A registry notifying a fresh ``ocicat serve`` on its own database; the chart pushed and indexed."""
        port = free_port()
        secret = uuid.uuid4().hex
        admin(self.args.database_server, f"CREATE DATABASE {self.db_name}")
        self.db_created = True
        self.registry = Registry(notify_url=f"http://127.0.0.1:{port}/api/v1/events", secret=secret).start()
        settings = python_env(OCICAT_DATABASE_URL=self.db_url, OCICAT_LISTEN=f"127.0.0.1:{port}",
                              OCICAT_REGISTRY_URL=self.registry.url, OCICAT_WEBHOOK_SECRETS=secret,
                              OCICAT_DEFAULT_VISIBILITY="public", OCICAT_DATA_DIR=self.workdir / "data")
        self.processes.append(Ocicat("serve", settings, self.workdir / "ocicat-serve.log").start())
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/healthz", timeout=30)
        archive = make_chart(self.workdir, CHART, VERSION, app_version="2.7.0", files={"README.md": README},
                             description="A web application", keywords=["web", "http"],
                             maintainers=[{"name": "Platform team", "email": "platform@example.com"}])
        helm_push(archive, self.registry, NAMESPACE)
        chart_api = f"{api}/api/v1/charts/{NAMESPACE}/{CHART}/-/versions/{VERSION}"
        wait_until(lambda: requests.get(chart_api, timeout=5).status_code == 200, timeout=20, what="the chart")
        return f"{api}/ui/charts/{NAMESPACE}/{CHART}/{VERSION}"

    @staticmethod
    def load(page, url: str, reload: bool = False) -> dict:
        """One page load: bytes on the wire (Chromium's own count), paint and render times."""
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        transferred = []
        cdp.on("Network.loadingFinished", lambda event: transferred.append(event["encodedDataLength"]))
        if reload:
            page.reload()
        else:
            page.goto(url)
        page.get_by_role("heading", level=1, name=f"{CHART} {VERSION}").wait_for(timeout=10_000)
        page.wait_for_load_state("networkidle", timeout=10_000)
        timings = page.evaluate(READ_TIMINGS)
        cdp.detach()
        return {"bytes": sum(transferred), "requests": len(transferred), **timings}

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        print("\n".join(machine_and_versions(self.args.database_server)))
        url = self.serve()
        self.playwright = sync_playwright().start()
        browser = launch(self.playwright)
        print(f"chromium:        {browser.version} (headless), playwright {_playwright_version()}")
        print(f"page:            {url}\n")
        first, again = [], []
        for _ in range(self.args.rounds):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            first.append(self.load(page, url))
            again.append(self.load(page, url, reload=True))
            context.close()
        browser.close()
        for title, loads in (("first visit (empty cache)", first), ("return visit (reload, revalidated)", again)):
            self.report(title, loads)
        median = statistics.median
        weight, shown = median(l["bytes"] for l in first), percentile([l["shown"] for l in first], 95)
        print("\nresults")
        print(f"      first visit transfers {weight / 1000:.1f} KB (median of {len(first)}): "
              + self.targets.at_most("first visit's bytes over the wire, median", weight / 1000, BYTES_TARGET / 1000,
                                     " KB"))
        print(f"      chart metadata shown at {shown:.0f} ms p95 (n={len(first)}): "
              + self.targets.at_most("chart metadata shown on a first visit, p95", shown, RENDER_TARGET_MS, " ms",
                                     digits=0))

    def report(self, title: str, loads: list[dict]) -> None:
        print(f"{title}, {len(loads)} loads:")
        print(f"      transferred   median {statistics.median(l['bytes'] for l in loads) / 1000:.1f} KB "
              f"in {statistics.median(l['requests'] for l in loads):.0f} requests")
        for key, name in (("fcp", "first contentful paint"), ("shown", "chart metadata shown")):
            values = [l[key] for l in loads]
            print(f"      {name:<23} median {statistics.median(values):.0f} ms, p95 {percentile(values, 95):.0f} ms, "
                  f"max {max(values):.0f} ms")


def _playwright_version() -> str:
    from importlib.metadata import version

    return version("playwright")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="first visits (and as many reloads) to time (default 20)")
    add_run_arguments(parser, time_limit=300.0)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return run_bounded(Bench(args), args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
