"""Catalog endpoints: thin views over queries.py, shaped by schemas.py."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from marshmallow import Schema

from ocicat.problems import problem

from . import queries
from .pagination import decode_cursor, link_header, page
from .schemas import ChartVersion, ListArgs, Repository, RepositoryListArgs, Tag

bp = Blueprint("catalog", __name__, url_prefix="/api/v1")


def _db():
    return current_app.extensions["ocicat"].db


def _list_response(body: dict, schema: Schema):
    response = jsonify({"items": schema.dump(body["items"], many=True), "next_cursor": body["next_cursor"]})
    response.headers.update(link_header(body["next_cursor"]))
    return response


@bp.get("/repositories")
def list_repositories():
    args = RepositoryListArgs().load(request.args)
    after = decode_cursor(args["cursor"], 1)[0] if args["cursor"] else None
    with _db().transaction() as cur:
        rows = queries.list_repositories(cur, args["namespace"], after, args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["name"]]), Repository())


@bp.get("/repositories/<path:name>/-/tags")
def list_tags(name: str):
    args = ListArgs().load(request.args)
    after = decode_cursor(args["cursor"], 1)[0] if args["cursor"] else None
    with _db().transaction() as cur:
        repository_id = queries.repository_id(cur, name)
        if repository_id is None:
            return problem(404, f"repository {name!r} not found")
        rows = queries.list_tags(cur, repository_id, after, args["limit"] + 1)
    return _list_response(page(rows, args["limit"], lambda r: [r["name"]]), Tag())


@bp.get("/charts/<path:name>/-/versions/<version>")
def chart_version(name: str, version: str):
    with _db().transaction() as cur:
        row = queries.chart_version(cur, name, version)
    if row is None:
        return problem(404, f"chart {name!r} has no version {version!r}")
    row["reference"] = f"oci://{current_app.extensions['ocicat'].config.registry_host}/{name}"
    return jsonify(ChartVersion().dump(row))
