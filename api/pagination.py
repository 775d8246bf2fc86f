"""Keyset pagination: an opaque cursor holding the last row's sort key, never an OFFSET.

A page costs the same at any depth, and rows inserted while a client pages
through a list never cause gaps or repeats among the rows already ordered.
"""

from __future__ import annotations

import base64
import json

from flask import request, url_for
from marshmallow import ValidationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("malformed cursor; use next_cursor from the previous page", "cursor") from None
    if not isinstance(key, list) or len(key) != length or not all(isinstance(k, (str, int)) for k in key):
        raise ValidationError("malformed cursor; use next_cursor from the previous page", "cursor")
    return key


def page(items: list, limit: int, key) -> dict:
    """The list body for ``items`` fetched with ``limit + 1`` rows, and the next cursor if there are more."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(key(items[-1])) if more and items else None
    return {"items": items, "next_cursor": next_cursor}


def link_header(next_cursor: str | None) -> dict:
    if not next_cursor:
        return {}
    args = {**request.args.to_dict(), "cursor": next_cursor}
    url = url_for(request.endpoint, **(request.view_args or {}), **args)
    return {"Link": f'<{url}>; rel="next"'}
