"""The web UI: one HTML shell for every page, and the static modules that fill it from the JSON API.

The UI reads the catalog through the public /api/v1 only, like any other
frontend, so every field it shows is in the OpenAPI document. Each page has a
real URL; the server answers all of them with the same shell (so a reload or a
shared link works) and the browser's router (static/app.js) renders the page.
There is no build step: the modules are committed as they are served.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template, url_for

from ocicat.oci.classify import ALL_KINDS

from ..security import HTML_POLICY, UI_POLICY

bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static", template_folder="templates")

# Preloaded by the shell, so the browser fetches the modules a page needs at once instead of discovering
# the imports one level at a time: every shared module, and the page's own (pages/<page>.js); the
# other pages load when the reader first goes there.
_STATIC = Path(bp.static_folder)
_SHARED = sorted(str(p.relative_to(_STATIC)) for p in _STATIC.glob("*.js") if p.name != "app.js")
_SHARED.append("pages/common.js")


@bp.after_request
def _policy(response):
    response.headers["Content-Security-Policy"] = UI_POLICY
    return response


def _shell(page: str, **_route):
    """The same shell for every route (static/app.js reads the path itself), preloading ``page``'s module."""
    oidc = current_app.extensions["ocicat"].config.oidc
    return render_template(
        "ui.html", modules=[url_for("ui.static", filename=m) for m in (*_SHARED, f"pages/{page}.js")],
        kinds=" ".join(sorted(ALL_KINDS)), html_policy=HTML_POLICY, provider=oidc.name if oidc else "",
    )


# The pages (static/app.js has the same table, and renders them).
for rule, endpoint, page in [
    ("/", "browse", "browse"),
    ("/namespaces/<path:namespace>", "namespace", "browse"),
    ("/repositories/<path:name>", "repository", "repository"),
    ("/repositories/<path:name>/-/manifests/<digest>", "manifest", "manifest"),
    ("/charts/<path:name>/-/compare", "compare", "compare"),
    ("/charts/<path:name_and_version>", "chart", "chart"),
    ("/search", "search", "search"),
    ("/sign-in", "sign_in", "sign-in"),
    ("/subscriptions", "subscriptions", "subscriptions"),
    ("/tokens", "tokens", "tokens"),
]:
    bp.add_url_rule(rule, endpoint, _shell, defaults={"page": page})
