"""How processing failures are told apart: retry later, or park for an operator."""

from __future__ import annotations

import random


class TransientError(Exception):
    """Worth retrying: the registry or database was unreachable, slow, or overloaded."""


class PermanentError(Exception):
    """Retrying cannot help (malformed manifest, digest mismatch, refused request)."""


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th retry (1-based).

    Jitter keeps a fleet of workers from retrying a recovering registry in lockstep.
    """
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))
