"""Debian's headless Chromium driven by Playwright: for the UI tests and bench/ui.py.

Playwright's own browser downloads are never used (this machine has no
internet): it drives /usr/bin/chromium. The browser is kept off the network
except for loopback: background services are switched off by flags, and
``offline`` answers any other request from the test itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from .processes import REPO_ROOT

CHROMIUM = os.environ.get("OCICAT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ARTIFACTS = Path(os.environ.get("OCICAT_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)


def offline(context, served: dict[str, tuple[str, bytes]] | None = None) -> list[str]:
    """Let only loopback requests through; answer ``served`` URLs (url: (content type, body)) locally.

    Returns the list of other URLs the page asked for (each refused).
    """
    refused: list[str] = []

    def route(route):
        url = route.request.url
        if url in (served or {}):
            content_type, body = served[url]
            route.fulfill(status=200, content_type=content_type, body=body)
        elif urlsplit(url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    return refused
