"""The web UI in a real browser, for the tests that look at pages: Debian's Chromium (harness.browser), each page
in a fresh context kept off the network, with everything it does that a test must see recorded (Watch)."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect, sync_playwright

from harness.browser import ARTIFACTS, launch, offline

WAIT_MS = 60_000  # the ceiling of a wait for what a page must show (a wait ends as soon as it shows)
ICON_URL = "https://icons.example/webapp.png"  # answered by the test (offline), with PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
expect.set_options(timeout=WAIT_MS)


class Watch:
    """Everything a page does that a test must see: dialogs, console errors, CSP violations, outside requests."""

    def __init__(self, page, refused: list[str]):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.refused = refused
        page.on("dialog", self._dialog)
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def violations(self) -> list[dict]:
        return self.page.evaluate("window.__violations || []")

    def assert_quiet(self):
        assert self.dialogs == [] and self.errors == [] and self.violations() == [], (
            self.dialogs, self.errors, self.violations())


# Runs before the page's own scripts (injected by the browser's debugging protocol, which the page's
# Content-Security-Policy does not govern): records every violation the policy reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__violations.push({directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample}));
"""


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, stack):
    """open_page(path, width=1280, height=900) -> (page, watch), in a fresh context kept off the network."""
    contexts = []

    def open_(path: str, width: int = 1280, height: int = 900, base: str | None = None):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=base or stack.api)
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(RECORD_VIOLATIONS)
        refused = offline(context, {ICON_URL: ("image/png", PNG)})
        contexts.append(context)
        page = context.new_page()
        watch = Watch(page, refused)
        page.goto(path)
        return page, watch

    yield open_
    for context in contexts:
        context.close()


def shoot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=full_page)
