"""Monocular's chart search, which ``helm search hub --endpoint <ocicat>`` asks: ocicat's own search over its charts,
answered in the shape Helm reads (Artifact Hub serves the same for the same reason).

Helm sends ``GET /api/chartsvc/v1/charts/search?q=<keywords>`` without credentials, so it finds the public charts;
a token (Bearer, or Basic with the token as the password) finds what its user may see. Hits are the latest version
of each chart repository, ranked as ``/api/v1/search`` ranks them, deprecated ones left out (as Artifact Hub does);
each names the chart's page and the classic Helm repository (api.helm_repository) that serves it. Helm shows every
hit it gets, so at most ``MAX_HITS`` are sent.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import Schema, fields

from ocicat.catalog import reads
from ocicat.catalog import search as catalog_search

from . import caller
from .helm_index import repository_of
from .openapi import documented
from .schemas import HelmRepository, MonocularSearchArgs

bp = Blueprint("monocular", __name__, url_prefix="/api/chartsvc/v1")
bp.before_request(lambda: caller.authenticate(caller.BASIC_CHALLENGE))

MAX_HITS = 100


class _Version(Schema):
    version = fields.Str()
    app_version = fields.Str()


class _LatestVersion(Schema):
    data = fields.Nested(_Version)


class _Relationships(Schema):
    latestChartVersion = fields.Nested(_LatestVersion)


class _Attributes(Schema):
    description = fields.Str()
    repo = fields.Nested(HelmRepository)


class _Package(Schema):
    packageUrl = fields.Str(metadata={"description": "the chart's page in ocicat's web UI"})


class MonocularChart(Schema):
    id = fields.Str(metadata={"description": "the chart's repository"})
    artifactHub = fields.Nested(_Package)
    attributes = fields.Nested(_Attributes)
    relationships = fields.Nested(_Relationships)


class MonocularResults(Schema):
    data = fields.List(fields.Nested(MonocularChart))


def _hit(row: dict, public_url: str) -> dict:
    return {
        "id": row["repository"],
        "artifactHub": {"packageUrl": f"{public_url}/ui/charts/{quote(row['repository'])}/{quote(row['version'], safe='')}"},
        "attributes": {"description": row["description"] or "", "repo": repository_of(row["namespace"], public_url)},
        "relationships": {"latestChartVersion": {"data": {"version": row["version"],
                                                          "app_version": row["app_version"] or ""}}},
    }


@bp.get("/charts/search")
@documented("Search charts as helm search hub --endpoint does (Monocular's API)", args=MonocularSearchArgs,
            response=MonocularResults, errors=(400, 401))
def search():
    q = MonocularSearchArgs().load(request.args)["q"].strip()
    services = current_app.extensions["ocicat"]
    with caller.reading(snapshot=True) as cur:  # hits and their charts agree
        if q:
            hits, _, _, _ = catalog_search.search(cur, g.principal.view, q=q, namespace=None, kind="helm-chart",
                                                  after=None, limit=MAX_HITS * 2)
            charts = reads.latest_charts(cur, [hit["id"] for hit in hits])
        else:
            charts = reads.list_charts(cur, g.principal.view, namespace=None, q=None, after=None, limit=MAX_HITS * 2)
    hits = [_hit(row, services.config.public_url) for row in charts if not row["deprecated"]][:MAX_HITS]
    return jsonify({"data": hits})
