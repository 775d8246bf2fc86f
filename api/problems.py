"""RFC 9457 problem details, the one error format of every HTTP answer ocicat gives."""

from __future__ import annotations

from http import HTTPStatus

from flask import Response, json

CONTENT_TYPE = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None, headers: dict | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=CONTENT_TYPE)
    response.headers.update(headers or {})
    return response
