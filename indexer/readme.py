"""A chart's README as safe HTML, made once at ingest: Markdown rendered by cmark-gfm, then sanitized by nh3.

Whoever can push a chart writes its README, so it is hostile input. It is
turned into HTML here, when the chart is indexed, and stored beside the text,
so that every frontend gets the same safe markup and no read ever runs the
renderer or the sanitizer. cmark-gfm (GitHub's CommonMark, through
cmarkgfm, as PyPI's readme_renderer uses it) renders with raw HTML allowed,
because real READMEs use it (centred logos, badges, details); nh3 (the
ammonia sanitizer) then keeps only an allow-list of tags and attributes, so no
script, style, event handler, form or frame survives, and URLs are limited to
the schemes below.

The worst case is bounded before any of that runs away. cmark-gfm is linear
by design; the sanitizer's HTML parser is not: every element costs it the
depth of the elements still open, so 64 KiB of ``<div>`` (or of ``>``, which
Markdown nests as blockquotes) took seconds. A README over MAX_README_CHARS,
or whose HTML is over MAX_HTML_CHARS or nests deeper than MAX_DEPTH, is not
turned into HTML at all: it is shown as the text it is (``readme_html`` null).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options

# The limits make the worst README rendered cost under 50 ms at ingest (bench/parse.py): the sanitizer's time
# grows with the HTML, and Markdown tables swell it two- to fivefold. Most READMEs are far smaller; the few past
# the limits (the largest parameter tables) are shown as text.
MAX_README_CHARS = 64 * 1024
MAX_HTML_CHARS = 128 * 1024
MAX_DEPTH = 256
# GitHub's extensions but its tag filter, which escapes <script> and the like into visible text: nh3 removes them.
EXTENSIONS = ["table", "strikethrough", "autolink", "tasklist"]

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# Images load in the reader's browser: over TLS only (no mixed content, no
# cleartext tracking), matching the web UI's Content-Security-Policy img-src.
IMAGE_SCHEMES = frozenset({"https"})
# Attributes that hold a URL, and the schemes each may use.
_URL_ATTRIBUTES = {("a", "href"): LINK_SCHEMES, ("img", "src"): IMAGE_SCHEMES,
                   ("blockquote", "cite"): frozenset({"http", "https"}), ("q", "cite"): frozenset({"http", "https"}),
                   ("del", "cite"): frozenset({"http", "https"}), ("ins", "cite"): frozenset({"http", "https"})}
# Elements without an end tag, which never deepen the tree.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")


def _absolute_url(tag: str, attribute: str, value: str) -> str | None:
    """Keep only absolute URLs of the allowed schemes in the attributes that hold URLs.

    A relative link in a chart's README points into the chart's source
    repository, not into ocicat, where it would resolve against the UI's own
    origin: dropping it is better than a link to the wrong place.
    """
    schemes = _URL_ATTRIBUTES.get((tag, attribute))
    if schemes is None:
        return value
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in schemes or (scheme != "mailto" and not parts.netloc):
        return None
    return value


_cleaner = nh3.Cleaner(url_schemes=set(LINK_SCHEMES), attribute_filter=_absolute_url,
                       link_rel="noopener nofollow", strip_comments=True)


def nests_deeper_than(html: str, limit: int) -> bool:
    """Whether elements of ``html`` nest more than ``limit`` deep (the scan stops as soon as they do).

    An end tag closes the innermost open element of its name and those inside
    it, and one with no such element open is ignored, as an HTML parser does;
    elements a parser would close implicitly (a ``<p>`` before a block) are
    counted as open, so the count errs on the deep side. Linear in the text:
    each element is opened and closed once, and ``open`` answers "is one of
    this name open?" without a walk up the stack.
    """
    stack: list[str] = []
    open_: dict[str, int] = {}
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if open_.get(name):
                while True:
                    top = stack.pop()
                    open_[top] -= 1
                    if top == name:
                        break
        elif name not in _VOID and not self_closing:
            stack.append(name)
            open_[name] = open_.get(name, 0) + 1
            if len(stack) > limit:
                return True
    return False


def readme_html(readme: str | None) -> str | None:
    """The README as sanitized HTML; None when there is none, or it is too large or too deeply nested to render."""
    if not readme or len(readme) > MAX_README_CHARS:
        return None
    html = cmarkgfm.markdown_to_html_with_extensions(readme, options=Options.CMARK_OPT_UNSAFE, extensions=EXTENSIONS)
    if len(html) > MAX_HTML_CHARS or nests_deeper_than(html, MAX_DEPTH):
        return None
    return _cleaner.clean(html)
