"""Response headers that keep browsers from turning ocicat's pages against its readers.

Everything ocicat shows was written by whoever could push to the registry, so
the pages must hold even if a string slipped through as markup: the web UI
runs only its own scripts (no inline code, no eval, no event-handler
attributes) and, through Trusted Types, may hand HTML to the DOM only via its
one policy, which the UI uses for the server-sanitized README alone. JSON and
other answers get a policy that allows nothing, so a response opened directly
in a browser cannot run or load anything either. No ocicat page may be framed
(clickjacking), none sends the reader's URL to the sites it links to, and no
answer is MIME-sniffed into something executable.
"""

from __future__ import annotations

# The name of the UI's only Trusted Types policy (api/ui/static/html.js).
HTML_POLICY = "ocicat-sanitized-html"

# img-src allows https: images from anywhere: chart icons and README images
# are remote URLs by nature. The cost, accepted and documented in the README:
# a chart's author learns when and from which address someone views the chart
# (as with an image in an e-mail). No referrer is sent, http: is refused (mixed
# content, cleartext), and ocicat does not proxy the images, which would turn
# it into a fetcher of arbitrary URLs (SSRF).
UI_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    f"trusted-types {HTML_POLICY}",
])
NOTHING_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API's HTML documentation page has no script, only its own <style> element.
DOCS_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def secure(response):
    """Add the headers every answer carries; a view that set its own policy keeps it."""
    response.headers.setdefault("Content-Security-Policy", NOTHING_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
