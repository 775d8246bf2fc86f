"""Decoding what the registry serves: every manifest and config blob is untrusted input."""

from __future__ import annotations

import json


def json_object(data: bytes, what: str) -> dict:
    """``data`` as a JSON object, or ValueError with a reason that names ``what``."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc
