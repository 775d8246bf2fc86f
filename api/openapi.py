"""The OpenAPI document, generated from the marshmallow schemas the views already use.

Each view carries its own documentation (:func:`documented`), so a route and
its description cannot drift apart; :func:`build_spec` walks the app's URL map
and asks apispec to turn the schemas into OpenAPI components.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields

PROBLEM = "application/problem+json"
_ARGUMENT = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


class Problem(Schema):
    """RFC 9457 problem details: every error ocicat answers."""

    type = fields.Str()
    title = fields.Str()
    status = fields.Int()
    detail = fields.Str()
    errors = fields.Dict()


def documented(summary: str, *, args: type[Schema] | None = None, response: type[Schema] | None = None,
               listing: bool = False, facets: type[Schema] | None = None, errors: tuple[int, ...] = (), body: dict | None = None,
               response_type: str = "application/json", status: int = 200):
    """Attach OpenAPI facts to a view: its query schema, its answer, the errors it can give."""

    def wrap(view):
        view.openapi = {"summary": summary, "args": args, "response": response, "listing": listing,
                        "facets": facets, "errors": errors, "body": body, "response_type": response_type,
                        "status": status}
        return view

    return wrap


def build_spec(app: Flask, version: str) -> dict:
    spec = APISpec(title="ocicat", version=version, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "Catalog of an OCI registry: repositories, tags, manifests, Helm charts, "
                                        "search, and the registry's notification webhook."})
    spec.components.schema("Problem", schema=Problem)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        meta = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if meta is None:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=_ARGUMENT.sub(r"{\1}", rule.rule), operations={method.lower(): _operation(rule, meta)})
    return spec.to_dict()


def _operation(rule, meta: dict) -> dict:
    parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in sorted(rule.arguments)]
    if meta["args"] is not None:
        parameters.append({"in": "query", "schema": meta["args"]})
    responses = {str(meta["status"]): {"description": HTTPStatus(meta["status"]).phrase,
                                       "content": {meta["response_type"]: {"schema": _answer(meta)}}}}
    for status in (*meta["errors"], 500):
        responses[str(status)] = {"description": "problem", "content": {PROBLEM: {"schema": "Problem"}}}
    operation = {"summary": meta["summary"], "operationId": rule.endpoint.replace(".", "_"),
                 "parameters": parameters, "responses": responses}
    if meta["body"] is not None:
        operation["requestBody"] = meta["body"]
    return operation


def _answer(meta: dict):
    response = meta["response"]
    if response is None:
        return {"type": "object"}
    if not meta["listing"]:
        return response
    properties = {
        "items": {"type": "array", "items": response},
        "next_cursor": {"type": "string", "nullable": True},
    }
    if meta["facets"] is not None:
        facet = {"type": "array", "items": meta["facets"]}
        # search only: estimate, when there are more hits than search.COUNT_BOUND and the facets are counted over
        # the first of them; total, the hits' number (at most the bound, then marked an estimate: "1,000+")
        properties["facets"] = {"type": "object", "properties": {"kind": facet, "namespace": facet,
                                                                 "estimate": {"type": "boolean"}}}
        properties["total"] = {"type": "object", "properties": {"count": {"type": "integer"},
                                                                "estimate": {"type": "boolean"}}}
        # true when no text matched and the hits are similar names (typo tolerance)
        properties["similar"] = {"type": "boolean"}
    return {"type": "object", "properties": properties, "required": list(properties)}
