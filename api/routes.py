"""Catalog endpoints: thin views over queries.py, shaped by schemas.py."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request
from marshmallow import Schema

from indexer.events import DIGEST_RE, REPOSITORY_RE
from ocicat.problems import problem

from . import queries
from .pagination import decode_cursor, link_header, page
from .schemas import ChartVersion, ListArgs, Manifest, Repository, RepositoryListArgs, Tag

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


@bp.get("/repositories")
def list_repositories():
    args = RepositoryListArgs().load(request.args)
    after = decode_cursor(args["cursor"], 1)
    with _db().transaction() as cur:
        rows = queries.list_repositories(cur, args["namespace"], after and after[0], args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["name"]]), Repository())


@bp.get("/repositories/<path:name>/-/tags")
def list_tags(name: str):
    args = ListArgs().load(request.args)
    after = decode_cursor(args["cursor"], 1)
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name) if REPOSITORY_RE.match(name) else None
        if repository_id is None:
            return _not_found(name)
        rows = queries.list_tags(cur, repository_id, after and after[0], args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["name"]]), Tag())


@bp.get("/repositories/<path:name>/-/manifests/<digest>")
def manifest(name: str, digest: str):
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name) if REPOSITORY_RE.match(name) else None
        row = queries.manifest(cur, repository_id, digest) if repository_id and DIGEST_RE.match(digest) else None
    if row is None:
        return problem(404, f"repository {name!r} has no manifest {digest!r}")
    row["repository"] = name
    return jsonify(Manifest().dump(row))


@bp.get("/charts/<path:name>/-/versions/<version>")
def chart_version(name: str, version: str):
    if not (REPOSITORY_RE.match(name) and VERSION_RE.match(version)):
        return _not_found(name, version)
    with _db().transaction() as cur:
        row = queries.chart_version(cur, name, version)
    if row is None:
        return _not_found(name, version)
    row["reference"] = f"oci://{current_app.extensions['ocicat'].config.registry_host}/{name}"
    return jsonify(ChartVersion().dump(row))
