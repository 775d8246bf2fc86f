"""The web UI: one HTML shell for every page, and the static modules that fill it from the JSON API.

The UI reads the catalog through the public /api/v1 only, like any other
frontend, so every field it shows is in the OpenAPI document. Each page has a
real URL; the server answers all of them with the same shell (so a reload or a
shared link works) and the browser's router (static/app.js) renders the page.
There is no build step: the modules are committed as they are served.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, render_template, url_for

from indexer.classify import ALL_KINDS

from .security import HTML_POLICY, UI_POLICY

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static", template_folder="templates")

# Preloaded by the shell, so the browser fetches every module at once instead
# of discovering the imports one level at a time.
_MODULES = sorted(str(p.relative_to(Path(bp.static_folder))) for p in Path(bp.static_folder).rglob("*.js"))


@bp.after_request
def _policy(response):
    response.headers["Content-Security-Policy"] = UI_POLICY
    return response


def _shell(**_route):
    """The same page for every route: static/app.js reads the path itself."""
    return render_template(
        "ui.html", modules=[url_for("ui.static", filename=m) for m in _MODULES if m != "app.js"],
        kinds=" ".join(sorted(ALL_KINDS)), html_policy=HTML_POLICY,
    )


# The pages (static/app.js has the same table, and renders them).
bp.add_url_rule("/", "browse", _shell)
bp.add_url_rule("/namespaces/<path:namespace>", "namespace", _shell)
bp.add_url_rule("/repositories/<path:name>", "repository", _shell)  # also .../-/manifests/<digest>
bp.add_url_rule("/charts/<path:name_and_version>", "chart", _shell)
bp.add_url_rule("/search", "search", _shell)
bp.add_url_rule("/sign-in", "sign_in", _shell)
