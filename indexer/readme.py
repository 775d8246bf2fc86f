"""A chart's README as safe HTML: Markdown rendered by markdown-it-py, then sanitized by nh3.

Whoever can push a chart writes its README, so it is hostile input. It is
turned into HTML here, on the server, so that every frontend gets the same
safe markup instead of each one choosing (or forgetting) a sanitizer.
markdown-it-py renders CommonMark with raw HTML allowed, because real READMEs
use it (centred logos, badges, details); nh3 (the ammonia sanitizer) then
keeps only an allow-list of tags and attributes, so no script, style, event
handler, form or frame survives, and URLs are limited to the schemes below.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

# Rendering costs about 4 ms per KiB: past this size the README is served as
# plain text only (readme_html null) rather than stall the request.
MAX_README_CHARS = 256 * 1024

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Images load in the reader's browser: over TLS only (no mixed content, no
# cleartext tracking), matching the web UI's Content-Security-Policy img-src.
IMAGE_SCHEMES = frozenset({"https"})

_markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _absolute_url(tag: str, attribute: str, value: str) -> str | None:
    """Keep only absolute URLs of the allowed schemes.

    A relative link in a chart's README points into the chart's source
    repository, not into ocicat, where it would resolve against the UI's own
    origin: dropping it is better than a link to the wrong place.
    """
    if (tag, attribute) not in (("a", "href"), ("img", "src")):
        return value
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in (IMAGE_SCHEMES if tag == "img" else LINK_SCHEMES) or (scheme != "mailto" and not parts.netloc):
        return None
    return value


_cleaner = nh3.Cleaner(url_schemes=set(LINK_SCHEMES), attribute_filter=_absolute_url,
                       link_rel="noopener nofollow", strip_comments=True)


@lru_cache(maxsize=64)  # the versions of one chart mostly share their README
def readme_html(readme: str | None) -> str | None:
    """The README as sanitized HTML; None when there is none or it is too large to render."""
    if not readme or len(readme) > MAX_README_CHARS:
        return None
    return _cleaner.clean(_markdown.render(readme))
