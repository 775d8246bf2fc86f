"""Keyset pagination: an opaque cursor holding the last row's sort key, never an OFFSET.

A page costs the same at any depth, and rows inserted while a client pages
through a list never cause gaps or repeats among the rows already ordered.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from flask import jsonify, request
from marshmallow import Schema, ValidationError

from ocicat.untrusted import storable

DEFAULT_LIMIT = 50
MAX_LIMIT = 500  # one page can hold a typical registry's whole chart list
MAX_KEY_CHARS = 1024  # a sort key value: a name, a version key, a timestamp


def encode_cursor(key: list) -> str:
    text = [v.isoformat() if isinstance(v, datetime) else str(v) for v in key]
    return base64.urlsafe_b64encode(json.dumps(text, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: tuple[str, ...]) -> list | None:
    """The sort key a cursor holds, as values of the SQL ``types`` (None for the first page); ValidationError if
    it is not one the server could have made.

    Every value is converted and range-checked here, as the statement will
    cast it, so a forged cursor is a 400, never a failed SQL cast (a 500).
    """
    if cursor is None:
        return None
    malformed = ValidationError("malformed cursor; use next_cursor from the previous page", "cursor")
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError
        values = [_convert(value, kind) for value, kind in zip(key, types)]
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError, RecursionError):
        raise malformed from None
    return values


REAL_MAX, REAL_MIN = 3.4028234e38, 1.1754944e-38  # PostgreSQL's real (float4): largest, smallest normal magnitude


def _timestamptz(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError
    parsed = parsed.astimezone(timezone.utc)  # PostgreSQL takes offsets up to 15:59 only; UTC has none
    if not 1 <= parsed.year <= 9999:
        raise ValueError
    return parsed


def _real(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or abs(number) > REAL_MAX or 0 < abs(number) < REAL_MIN:
        raise ValueError
    return number


def _integer(bits: int):
    def convert(value: str) -> int:
        number = int(value)
        if not -2 ** bits <= number < 2 ** bits:
            raise ValueError
        return number
    return convert


# SQL type -> the conversion of a cursor's text into a value the statement's cast accepts, or ValueError.
_CONVERTERS = {"text": str, "timestamptz": _timestamptz, "real": _real, "int4": _integer(31), "int8": _integer(63)}


def _convert(value, kind: str):
    convert = _CONVERTERS[kind]
    if not isinstance(value, str) or value != storable(value) or len(value) > MAX_KEY_CHARS:
        raise ValueError
    return convert(value)


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


def list_response(body: dict, schema: Schema):
    """A list answer: ``{"items", "next_cursor"}`` and the Link header to the next page."""
    response = jsonify({"items": schema.dump(body["items"], many=True), "next_cursor": body["next_cursor"]})
    response.headers.update(link_header(body["next_cursor"]))
    return response
