"""Keyset pagination: an opaque cursor holding the last row's sort key, never an OFFSET.

A page costs the same at any depth, and rows inserted while a client pages
through a list never cause gaps or repeats among the rows already ordered.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from urllib.parse import quote, urlencode

from flask import request
from marshmallow import ValidationError

from ocicat.untrusted import storable

DEFAULT_LIMIT = 50
MAX_LIMIT = 500  # one page can hold a typical registry's whole chart list


def encode_cursor(key: list) -> str:
    text = [v.isoformat() if isinstance(v, datetime) else str(v) for v in key]
    return base64.urlsafe_b64encode(json.dumps(text, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: tuple[type, ...]) -> list | None:
    """The sort key a cursor holds, as ``types`` (None for the first page); ValidationError if it is not ours.

    Every value is converted here, so a forged cursor is a 400, never a failed SQL cast.
    """
    if cursor is None:
        return None
    malformed = ValidationError("malformed cursor; use next_cursor from the previous page", "cursor")
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        values = [_convert(value, kind) for value, kind in zip(key, types)]
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise malformed from None
    return values


def _convert(value, kind: type):
    if not isinstance(value, str) or value != storable(value):
        raise ValueError
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or not 1 <= parsed.year <= 9999:
            raise ValueError
        return parsed
    if kind is float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError
        return number
    if kind is int:
        number = int(value)
        if abs(number) >= 2**63:
            raise ValueError
        return number
    return value


def page(items: list, limit: int, key) -> dict:
    """The list body for ``items`` fetched with ``limit + 1`` rows, and the next cursor if there are more."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(key(items[-1])) if more and items else None
    return {"items": items, "next_cursor": next_cursor}


def link_header(next_cursor: str | None) -> dict:
    """RFC 8288 link to the next page: this request's URL with the new cursor.

    Built from the path and query string as given, so no query parameter can
    be mistaken for a routing argument.
    """
    if not next_cursor:
        return {}
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", next_cursor)]
    return {"Link": f'<{request.script_root}{quote(request.path)}?{urlencode(args)}>; rel="next"'}
