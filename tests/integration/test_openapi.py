"""The OpenAPI document against the API itself: schemathesis generates requests from it, every answer must match."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance, response_schema_conformance

from ocicat.cli import build_app
from ocicat.config import Config


@pytest.fixture(scope="module")
def openapi_schema(stack):
    """The live catalog's database (filled by the other tests), served in-process so checks are fast."""
    app = build_app(Config(database_url=stack.env["OCICAT_DATABASE_URL"], default_visibility="public",
                            webhook_secrets=("schemathesis-secret",)))
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    app.extensions["ocicat"].db.close()


def test_every_operation_answers_as_documented(openapi_schema):
    """No server errors; status codes, content types and bodies as the document says.

    (schemathesis' own pytest plugin does not run under this pytest, so the
    operations are walked here, each with its own hypothesis strategy.)
    """
    operations = [result.ok() for result in openapi_schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:
        # Cursors are opaque tokens the API hands out: a random string is rightly refused with 400. The Helm index
        # is sent gzipped (Content-Encoding), which the WSGI client does not undo before parsing the YAML; its body
        # is checked by Helm's own loader (test_helm_repository.py).
        excluded = [positive_data_acceptance]
        if operation.path.startswith("/helm/"):
            excluded.append(response_schema_conformance)

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate(excluded_checks=excluded)

        check()


def test_the_document_lists_every_route(stack):
    document = stack.get("/api/v1/openapi.json").json()
    assert set(document["paths"]) >= {
        "/api/v1/repositories", "/api/v1/repositories/{name}", "/api/v1/repositories/{name}/-/tags",
        "/api/v1/repositories/{name}/-/manifests/{digest}", "/api/v1/charts", "/api/v1/charts/{name}/-/versions",
        "/api/v1/charts/{name}/-/versions/{version}", "/api/v1/search", "/api/v1/events", "/healthz", "/readyz",
        "/helm/{namespace}/index.yaml", "/helm/{namespace}/charts/{filename}", "/api/chartsvc/v1/charts/search"}
    docs = stack.get("/api/v1/docs")
    assert docs.status_code == 200 and "<script" not in docs.text and "/api/v1/search" in docs.text
