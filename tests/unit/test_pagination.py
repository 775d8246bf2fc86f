"""Keyset cursors: what the server wrote reads back as the same key; anything else is a 400, never a failed cast."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from api.pagination import decode_cursor, encode_cursor, page

KEY_TYPES = (int, float, datetime, str)


def test_a_cursor_holds_the_last_rows_key():
    key = [1, 0.25, datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc), "team/app"]
    assert decode_cursor(encode_cursor(key), KEY_TYPES) == key
    assert decode_cursor(None, KEY_TYPES) is None


def _forged(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "!!!", _forged({"not": "a list"}), _forged(["1", "0.5", "2026-12-03T10:00:00+00:00"]),
    _forged(["x", "0.5", "2026-12-03T10:00:00+00:00", "a"]), _forged(["1", "nan", "2026-12-03T10:00:00+00:00", "a"]),
    _forged(["1", "0.5", "2026-12-03T10:00:00", "a"]),  # no offset
    _forged(["1", "0.5", "2026-12-03T10:00:00+00:00", "a\u0000b"]), _forged([str(2 ** 63), "0", "2026-01-01T00:00:00+00:00", "a"]),
])
def test_a_cursor_the_server_did_not_make_is_refused(cursor):
    with pytest.raises(ValidationError, match="malformed cursor"):
        decode_cursor(cursor, KEY_TYPES)


def test_a_page_of_limit_plus_one_rows_has_a_next_cursor():
    rows = [{"name": n} for n in "abc"]
    assert page(rows, 2, lambda r: [r["name"]]) == {"items": rows[:2], "next_cursor": encode_cursor(["b"])}
    assert page(rows[:2], 2, lambda r: [r["name"]])["next_cursor"] is None
