"""The README renderer on its own: what survives of hostile Markdown and HTML, what real READMEs keep, and
that no README can make it run long."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from indexer.readme import MAX_DEPTH, MAX_README_CHARS, nests_deeper_than, readme_html


class _Markup(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("hostile", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href=" JaVaScRiPt:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    "[x](javascript:alert(1))",
    '<iframe src="https://evil.example"></iframe>',
    '<form action="https://evil.example"><input name=a></form>',
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">x</div>',
    '<object data="https://evil.example/x.swf"></object>',
    '<base href="https://evil.example/">',
    "<style>*{display:none}</style>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<details open ontoggle=alert(1)>",
    '<blockquote cite="javascript:alert(1)">quoted</blockquote>',
    '<q cite=" javascript:alert(1)">quoted</q>',
    '<img src="http://tracker.example/p.gif">',
])
def test_nothing_that_runs_loads_insecurely_or_navigates_oddly_survives(hostile):
    html = readme_html(f"before {hostile} after")
    for tag, attributes in _Markup(html).tags:
        assert tag not in {"script", "iframe", "form", "input", "object", "base", "style", "svg", "math"}, html
        assert not any(name.startswith("on") or name == "style" for name in attributes), html
        assert re.match(r"^(https://|http://|mailto:)", attributes.get("href", "https://")), html
        assert attributes.get("src", "https://").startswith("https://"), html
        assert re.match(r"^https?://", attributes.get("cite", "https://")), html
    assert "alert(1)</script>" not in html and "before" in html and "after" in html


def test_real_readme_markup_is_kept_and_links_are_marked():
    html = readme_html(
        "# Title\n\n**bold** `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        '<p align="center"><img src="https://example.com/logo.png" alt="logo" width="100"></p>\n\n'
        "[docs](https://docs.example/x) [mail](mailto:a@example.com) ~~old~~\n\n```yaml\nkey: value\n```\n"
    )
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<td>1</td>" in html and "<del>old</del>" in html
    assert '<img src="https://example.com/logo.png" alt="logo" width="100">' in html
    assert '<a href="https://docs.example/x" rel="noopener nofollow">docs</a>' in html
    assert '<a href="mailto:a@example.com" rel="noopener nofollow">mail</a>' in html
    assert "key: value" in html


def test_relative_links_and_images_are_dropped():
    html = readme_html('[a](docs/a.md) ![b](img/b.png) <a href="/ui/sign-in">c</a> [d](#usage)')
    assert "href" not in html and "src" not in html and ">a<" in html and ">c<" in html


def test_no_readme_or_a_huge_one_gives_no_html():
    assert readme_html(None) is None and readme_html("") is None
    assert readme_html("x" * (MAX_README_CHARS + 1)) is None
    assert readme_html("x" * MAX_README_CHARS) == "<p>" + "x" * MAX_README_CHARS + "</p>\n"


@pytest.mark.parametrize("hostile", [
    "<div>" * (MAX_README_CHARS // 5),  # unclosed elements: each costs the sanitizer the depth of the rest
    "> " * (MAX_README_CHARS // 2),  # Markdown nests these as blockquotes
    "<b><p>" * (MAX_README_CHARS // 6),
    "</x><div>" * (MAX_README_CHARS // 9),  # stray end tags close nothing, as in a browser
])
def test_html_nested_too_deeply_is_shown_as_text(hostile):
    assert readme_html(hostile) is None  # what that costs (milliseconds; seconds before the limit): bench/parse.py


def test_the_depth_scan_closes_elements_as_a_parser_does():
    assert not nests_deeper_than("<div><span></span></div>" * 1000, 2)
    assert nests_deeper_than("<div><div><div>", 2) and not nests_deeper_than("<div><div><br><img/>", 2)
    assert not nests_deeper_than("<ul><li><div><p>x</ul>" * 50, 4)  # </ul> closes what is inside it
    assert not nests_deeper_than("<div>" * MAX_DEPTH, MAX_DEPTH)
