"""Catalog endpoints: thin views over queries.py, shaped by schemas.py."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request
from marshmallow import Schema

from indexer.events import DIGEST_RE, REPOSITORY_RE
from ocicat.problems import problem

from . import queries
from ocicat.openapi import documented
from .pagination import decode_cursor, link_header, page
from .rendering import readme_html
from .schemas import (ChartListArgs, ChartListItem, ChartVersion, FacetCount, ListArgs, Manifest, Namespace,
                      NamespaceListArgs, Repository, RepositoryListArgs, SearchArgs, SearchHit, Tag, TagListArgs)

bp = Blueprint("catalog", __name__, url_prefix="/api/v1")

# Chart versions are SemVer; Helm's tag spelling (_ for +) is a valid name too.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")


@bp.before_request
def _readable():
    """Fail closed: until ocicat knows who is asking, a private catalog shows nothing.

    Visibility per path and sign-in are not built yet; serving everything
    anonymously would expose what the registry keeps private.
    """
    if current_app.extensions["ocicat"].config.default_visibility != "public":
        return problem(401, "this catalog is private (OCICAT_DEFAULT_VISIBILITY=private) and ocicat cannot "
                       "authenticate readers yet; set OCICAT_DEFAULT_VISIBILITY=public to serve it anonymously")
    return None


def _not_found(name: str, version: str | None = None):
    """The same 404 for what does not exist and what cannot (a name no registry accepts)."""
    if version is None:
        return problem(404, f"repository {name!r} not found")
    return problem(404, f"chart {name!r} has no version {version!r}")


def _db():
    return current_app.extensions["ocicat"].db


def _list_response(body: dict, schema: Schema):
    response = jsonify({"items": schema.dump(body["items"], many=True), "next_cursor": body["next_cursor"]})
    response.headers.update(link_header(body["next_cursor"]))
    return response


@bp.get("/namespaces")
@documented("List the namespaces directly below a namespace (the top level without one)", args=NamespaceListArgs,
            response=Namespace, listing=True, errors=(400, 401))
def list_namespaces():
    args = NamespaceListArgs().load(request.args)
    after = decode_cursor(args["cursor"], (str,))
    with _db().transaction() as cur:
        rows = queries.list_namespaces(cur, namespace=args["namespace"], after=after and after[0],
                                       limit=args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["name"]]), Namespace())


@bp.get("/repositories")
@documented("List repositories", args=RepositoryListArgs, response=Repository, listing=True, errors=(400, 401))
def list_repositories():
    args = RepositoryListArgs().load(request.args)
    _, _, key, types = queries.REPOSITORY_SORTS[args["sort"]]
    after = decode_cursor(args["cursor"], types)
    with _db().transaction() as cur:
        rows = queries.list_repositories(cur, namespace=args["namespace"], kind=args["kind"], q=args["q"],
                                         sort=args["sort"], after=after, limit=args["limit"] + 1)
    return _list_response(page(rows, args["limit"], key), Repository())


@bp.get("/repositories/<path:name>")
@documented("One repository: tag count, size, kinds, last push", response=Repository, errors=(401, 404))
def repository(name: str):
    with _db().transaction() as cur:
        row = queries.repository(cur, name) if REPOSITORY_RE.match(name) else None
    return jsonify(Repository().dump(row)) if row else _not_found(name)


@bp.get("/repositories/<path:name>/-/tags")
@documented("List a repository's version tags", args=TagListArgs, response=Tag, listing=True, errors=(400, 401, 404))
def list_tags(name: str):
    args = TagListArgs().load(request.args)
    _, _, key, types = queries.TAG_SORTS[args["sort"]]
    after = decode_cursor(args["cursor"], types)
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name) if REPOSITORY_RE.match(name) else None
        if repository_id is None:
            return _not_found(name)
        rows = queries.list_tags(cur, repository_id, name=args["name"], kind=args["kind"], sort=args["sort"],
                                 after=after, limit=args["limit"] + 1)
    return _list_response(page(rows, args["limit"], key), Tag())


@bp.get("/charts")
@documented("List Helm charts, each at its latest version", args=ChartListArgs, response=ChartListItem,
            listing=True, errors=(400, 401))
def list_charts():
    args = ChartListArgs().load(request.args)
    after = decode_cursor(args["cursor"], (str,))
    with _db().transaction() as cur:
        rows = queries.list_charts(cur, namespace=args["namespace"], q=args["q"], after=after and after[0],
                                   limit=args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["repository"]]), ChartListItem())


@bp.get("/charts/<path:name>/-/versions")
@documented("List a chart's versions in SemVer order, releases first", args=ListArgs, response=ChartListItem,
            listing=True, errors=(400, 401, 404))
def list_chart_versions(name: str):
    args = ListArgs().load(request.args)
    key, types = queries.CHART_VERSION_KEY
    after = decode_cursor(args["cursor"], types)
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name) if REPOSITORY_RE.match(name) else None
        rows = queries.list_chart_versions(cur, repository_id, after, args["limit"] + 1) if repository_id else []
    if not rows and after is None:
        return problem(404, f"chart {name!r} not found")
    return _list_response(page(rows, args["limit"], key), ChartListItem())


@bp.get("/search")
@documented("Search everything, ranked, with facet counts", args=SearchArgs, response=SearchHit, listing=True,
            facets=FacetCount, errors=(400, 401))
def search():
    args = SearchArgs().load(request.args)
    key, types = queries.SEARCH_KEY
    after = decode_cursor(args["cursor"], types)
    filters = {"q": args["q"], "namespace": args["namespace"], "kind": args["kind"]}
    with _db().transaction() as cur:
        rows, facets = queries.search(cur, **filters, after=after, limit=args["limit"] + 1)
    body = page(rows, args["limit"], key)
    response = jsonify({"items": SearchHit().dump(body["items"], many=True), "next_cursor": body["next_cursor"],
                        "facets": {name: FacetCount().dump(counts, many=True) for name, counts in facets.items()}})
    response.headers.update(link_header(body["next_cursor"]))
    return response


@bp.get("/repositories/<path:name>/-/manifests/<digest>")
@documented("One manifest: layers, children, config, tags, attachments", response=Manifest, errors=(401, 404))
def manifest(name: str, digest: str):
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name) if REPOSITORY_RE.match(name) else None
        row = queries.manifest(cur, repository_id, digest) if repository_id and DIGEST_RE.match(digest) else None
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
    with _db().transaction() as cur:
        row = queries.chart_version(cur, name, version)
    if row is None:
        return _not_found(name, version)
    # Helm reads "+" in a reference's tag and looks up "_" itself (helm#10166).
    row["reference"] = f"oci://{current_app.extensions['ocicat'].config.registry_host}/{name}:{row['version']}"
    row["readme_html"] = readme_html(row["readme"])
    return jsonify(ChartVersion().dump(row))
