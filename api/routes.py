"""Catalog endpoints: thin views over ocicat.catalog.reads, shaped by schemas.py."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, g, jsonify, request

from ocicat import compare
from ocicat.catalog import reads, upgrades
from ocicat.catalog import search as catalog_search
from ocicat.catalog.visibility import Visibility
from ocicat.oci.names import DIGEST_RE, REPOSITORY_RE

from . import caller, deletes
from .helm_index import repository_of
from .openapi import documented
from .pagination import decode_cursor, link_header, list_response, page
from .problems import problem
from .schemas import (
    ChartFiles,
    ChartListArgs,
    ChartListItem,
    ChartVersion,
    CompareArgs,
    Comparison,
    Deletion,
    FacetCount,
    ListArgs,
    Manifest,
    Me,
    Namespace,
    NamespaceListArgs,
    Repository,
    RepositoryListArgs,
    SearchArgs,
    SearchHit,
    Tag,
    TagListArgs,
)

bp = Blueprint("catalog", __name__, url_prefix="/api/v1")

# Chart versions are SemVer; Helm's tag spelling (_ for +) is a valid name too.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}\Z")


bp.before_request(caller.authenticate)


def _access() -> Visibility:
    """What the caller may see, for every catalog read."""
    return g.principal.view


def _not_found(name: str, reference: str | None = None, what: str = "version"):
    """The same 404 for what does not exist, what cannot (a name no registry accepts), and what the caller
    may not see."""
    if reference is None:
        return problem(404, f"repository {name!r} not found")
    return problem(404, f"chart {name!r} has no {what} {reference!r}")


@bp.get("/namespaces")
@documented("List the namespaces directly below a namespace (the top level without one)", args=NamespaceListArgs,
            response=Namespace, listing=True, errors=(400, 401))
def list_namespaces():
    args = NamespaceListArgs().load(request.args)
    after = decode_cursor(args["cursor"], reads.NAME_KEY)
    with caller.reading() as cur:
        rows = reads.list_namespaces(cur, _access(), namespace=args["namespace"], after=after and after[0],
                                       limit=args["limit"] + 1)
    return list_response(page(rows, args["limit"], lambda r: [r["name"]]), Namespace())


@bp.get("/repositories")
@documented("List repositories", args=RepositoryListArgs, response=Repository, listing=True, errors=(400, 401))
def list_repositories():
    args = RepositoryListArgs().load(request.args)
    _, _, key, types = reads.REPOSITORY_SORTS[args["sort"]]
    after = decode_cursor(args["cursor"], types)
    with caller.reading() as cur:
        rows = reads.list_repositories(cur, _access(), namespace=args["namespace"], kind=args["kind"], q=args["q"],
                                         sort=args["sort"], after=after, limit=args["limit"] + 1)
    return list_response(page(rows, args["limit"], key), Repository())


@bp.get("/repositories/<path:name>")
@documented("One repository: tag count, size, kinds, last push", response=Repository, errors=(401, 404))
def repository(name: str):
    with caller.reading() as cur:
        row = reads.repository(cur, _access(), name) if REPOSITORY_RE.match(name) else None
    return jsonify(Repository().dump(row)) if row else _not_found(name)


@bp.get("/repositories/<path:name>/-/tags")
@documented("List a repository's version tags", args=TagListArgs, response=Tag, listing=True, errors=(400, 401, 404))
def list_tags(name: str):
    args = TagListArgs().load(request.args)
    _, _, key, types = reads.TAG_SORTS[args["sort"]]
    after = decode_cursor(args["cursor"], types)
    with caller.reading() as cur:
        repository_id = reads.repository_id(cur, _access(), name) if REPOSITORY_RE.match(name) else None
        if repository_id is None:
            return _not_found(name)
        rows = reads.list_tags(cur, repository_id, name=args["name"], kind=args["kind"], sort=args["sort"],
                                 after=after, limit=args["limit"] + 1)
    return list_response(page(rows, args["limit"], key), Tag())


@bp.get("/charts")
@documented("List Helm charts, each at its latest version", args=ChartListArgs, response=ChartListItem,
            listing=True, errors=(400, 401))
def list_charts():
    args = ChartListArgs().load(request.args)
    after = decode_cursor(args["cursor"], reads.NAME_KEY)
    with caller.reading() as cur:
        rows = reads.list_charts(cur, _access(), namespace=args["namespace"], q=args["q"], after=after and after[0],
                                   limit=args["limit"] + 1)
    return list_response(page(rows, args["limit"], lambda r: [r["repository"]]), ChartListItem())


@bp.get("/charts/<path:name>/-/versions")
@documented("List a chart's versions in SemVer order, releases first", args=ListArgs, response=ChartListItem,
            listing=True, errors=(400, 401, 404))
def list_chart_versions(name: str):
    args = ListArgs().load(request.args)
    key, types = reads.CHART_VERSION_KEY
    after = decode_cursor(args["cursor"], types)
    with caller.reading() as cur:
        repository_id = reads.repository_id(cur, _access(), name) if REPOSITORY_RE.match(name) else None
        rows = reads.list_chart_versions(cur, repository_id, after, args["limit"] + 1) if repository_id else []
    if not rows and after is None:
        return problem(404, f"chart {name!r} not found")
    return list_response(page(rows, args["limit"], key), ChartListItem())


@bp.get("/search")
@documented("Search everything, ranked, with facet counts", args=SearchArgs, response=SearchHit, listing=True,
            facets=FacetCount, errors=(400, 401))
def search():
    args = SearchArgs().load(request.args)
    key, types = catalog_search.KEY
    after = decode_cursor(args["cursor"], types)
    filters = {"q": args["q"], "namespace": args["namespace"], "kind": args["kind"]}
    with caller.reading(snapshot=True) as cur:  # the page, its counts and its details agree
        rows, facets, total, similar = catalog_search.search(cur, _access(), **filters, after=after,
                                                             limit=args["limit"] + 1)
    body = page(rows, args["limit"], key)
    response = jsonify({"items": SearchHit().dump(body["items"], many=True), "next_cursor": body["next_cursor"],
                        "facets": {"kind": FacetCount().dump(facets["kind"], many=True),
                                   "namespace": FacetCount().dump(facets["namespace"], many=True),
                                   "estimate": facets["estimate"]},
                        "total": total, "similar": similar})
    response.headers.update(link_header(body["next_cursor"]))
    return response


@bp.get("/repositories/<path:name>/-/manifests/<digest>")
@documented("One manifest: layers, children, config, tags, attachments", response=Manifest, errors=(401, 404))
def manifest(name: str, digest: str):
    with caller.reading() as cur:
        repository_id = reads.repository_id(cur, _access(), name) if REPOSITORY_RE.match(name) else None
        row = reads.manifest(cur, repository_id, digest) if repository_id and DIGEST_RE.match(digest) else None
    if row is None:
        return problem(404, f"repository {name!r} has no manifest {digest!r}")
    row["repository"] = name
    return jsonify(Manifest().dump(row))


@bp.get("/charts/<path:name>/-/versions/<version>")
@documented("One chart version: every Chart.yaml field, README, values, schema, templates, CRDs",
            response=ChartVersion, errors=(401, 404))
def chart_version(name: str, version: str):
    if not (REPOSITORY_RE.match(name) and VERSION_RE.match(version)):
        return _not_found(name, version)
    with caller.reading() as cur:
        row = reads.chart_version(cur, _access(), name, version=version)
    return _chart_version_response(row, name, version)


@bp.get("/charts/<path:name>/-/versions/<version>/files")
@documented("A chart version's templates and CRDs with their contents, all at once (at most 16 MiB)",
            response=ChartFiles, errors=(401, 404))
def chart_files(name: str, version: str):
    with caller.reading() as cur:
        found = _chart_version_id(cur, name, version)
        items = upgrades.files(cur, found[1]) if found else None
    return _not_found(name, version) if items is None else jsonify(ChartFiles().dump({"items": items}))


@bp.get("/charts/<path:name>/-/compare")
@documented("Compare two versions of a chart: Chart.yaml, values (by path), schema, templates and CRDs (unified "
            "diffs), dependencies, images, the changelogs between, and the upgrade report", args=CompareArgs,
            response=Comparison, errors=(400, 401, 404))
def compare_versions(name: str):
    args = CompareArgs().load(request.args)
    with caller.reading() as cur:
        old, new = (_chart_version_id(cur, name, args[key]) for key in ("from_", "to"))
        if old is None or new is None:
            return _not_found(name, args["from_"] if old is None else args["to"])
        inputs = upgrades.comparison_inputs(cur, old[0], old[1], new[1])
    return jsonify(Comparison().dump(compare.compare(**inputs)))  # with the connection back in the pool


def _chart_version_id(cur, name: str, version: str) -> tuple[int, int] | None:
    if not (REPOSITORY_RE.match(name) and VERSION_RE.match(version)):
        return None
    return reads.chart_version_id(cur, _access(), name, version)


# What ocicat extracts from a digest never changes until ocicat itself learns to extract more (an upgrade):
# a day in the browser's cache, and private, because visibility can change and shared caches cannot know.
DIGEST_CACHE_CONTROL = "private, max-age=86400"


@bp.get("/charts/<path:name>/-/digests/<digest>")
@documented("The chart at one digest, as the version detail; cacheable for a day (content addressed by digest)",
            response=ChartVersion, errors=(401, 404))
def chart_at_digest(name: str, digest: str):
    if not (REPOSITORY_RE.match(name) and DIGEST_RE.match(digest)):
        return _not_found(name, digest, "digest")
    with caller.reading() as cur:
        row = reads.chart_version(cur, _access(), name, digest=digest)
    response = _chart_version_response(row, name, digest, "digest")
    if row is not None:
        response.headers["Cache-Control"] = DIGEST_CACHE_CONTROL
    return response


def _chart_version_response(row: dict | None, name: str, reference: str, what: str = "version"):
    if row is None:
        return _not_found(name, reference, what)
    # Helm reads "+" in a reference's tag and looks up "_" itself (helm#10166).
    config = current_app.extensions["ocicat"].config
    row["reference"] = f"oci://{config.registry_host}/{name}:{row['version']}"
    row["helm_repository"] = repository_of(row["namespace"], config.public_url)
    return jsonify(ChartVersion().dump(row))


@bp.get("/me")
@documented("Who the API takes the caller for (anonymous without a token or session)", response=Me, errors=(401,))
def me():
    principal = g.principal
    return jsonify(Me().dump({"authenticated": principal.authenticated, "user": principal.user, "admin": principal.admin,
                              "session": g.csrf_token is not None, "csrf_token": g.csrf_token}))


def _delete(name: str, reference: str, what: str):
    services = current_app.extensions["ocicat"]
    try:
        deletes.request_delete(services.db, services.registry, g.principal, name, reference, what)
    except deletes.DeleteRefused as exc:
        challenge = caller.CHALLENGE if exc.status == 401 else None
        return problem(exc.status, exc.detail, headers=challenge)
    return jsonify(Deletion().dump({"repository": name, "reference": reference, "status": "accepted"})), 202


@bp.delete("/repositories/<path:name>/-/manifests/<digest>")
@documented("Delete a manifest in the registry (developer role or above); the catalog follows the registry's event",
            response=Deletion, status=202, errors=(401, 403, 404, 409, 502))
def delete_manifest(name: str, digest: str):
    return _delete(name, digest, "manifest")


@bp.delete("/repositories/<path:name>/-/tags/<tag>")
@documented("Delete a tag in the registry (developer role or above); the catalog follows the registry's event",
            response=Deletion, status=202, errors=(401, 403, 404, 409, 502))
def delete_tag(name: str, tag: str):
    return _delete(name, tag, "tag")
