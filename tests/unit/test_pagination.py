"""Keyset cursors: what the server wrote reads back as the same key; anything else is a 400, never a failed cast."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from marshmallow import ValidationError

from api.pagination import decode_cursor, encode_cursor, page

KEY_TYPES = ("int4", "real", "timestamptz", "text")


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
    _forged(["99999999999", "0.5", "2026-12-03T10:00:00+00:00", "a"]),  # beyond int4
    _forged(["1", "1e39", "2026-12-03T10:00:00+00:00", "a"]),  # beyond real
    _forged(["1", "1e-50", "2026-12-03T10:00:00+00:00", "a"]),  # below real (hypothesis found this one)
    _forged(["1", "0.5", "0001-01-01T00:00:00+00:01", "a"]),  # before year 1 in UTC
    _forged(["1", "0.5", "2026-12-03T10:00:00+00:00", "a" * 2000]),
])

def test_a_cursor_the_server_did_not_make_is_refused(cursor):  # beyond int4 and real were 500s (PostgreSQL refused them)
    with pytest.raises(ValidationError, match="malformed cursor"):
        decode_cursor(cursor, KEY_TYPES)


def test_a_cursors_timestamp_is_taken_in_utc_whatever_its_offset():
    # PostgreSQL refuses offsets past 15:59; the key means the same instant in UTC.
    [at] = decode_cursor(_forged(["2026-12-03T10:00:00+16:00"]), ("timestamptz",))
    assert at == datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc) and at.utcoffset().total_seconds() == 0



def test_a_page_of_limit_plus_one_rows_has_a_next_cursor():
    rows = [{"name": n} for n in "abc"]
    assert page(rows, 2, lambda r: [r["name"]]) == {"items": rows[:2], "next_cursor": encode_cursor(["b"])}
    assert page(rows[:2], 2, lambda r: [r["name"]])["next_cursor"] is None
