"""How processing failures are told apart: retry later, or park for an operator."""

from __future__ import annotations

import random


class TransientError(Exception):
    """Worth retrying: the registry or database was unreachable, slow, or overloaded."""


class Busy(Exception):
    """Not now, through no fault of the event: another worker holds its repository.

    The bus puts it back for a moment without counting an attempt, instead of
    blocking a thread (and a database connection) behind the other worker.
    """


class PermanentError(Exception):
    """Retrying cannot help (malformed manifest, digest mismatch, refused request)."""


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 300.0) -> float:
    """Exponential backoff with "equal jitter" for the ``attempt``-th retry (1-based).

    Half the delay is fixed, so a retry never comes right back; the random
    half keeps a fleet of workers from hitting a recovering registry in lockstep.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)
