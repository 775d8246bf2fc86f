"""How failures are told apart: retry later, wait a moment, or give up (park for an operator, answer an error).

Raised by the registry client and the indexer, and mapped by the bus (retry
or dead letter) and by the API (an HTTP status), so both sides name them from here.
"""

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


class NotFound(Exception):
    """The registry does not have it (deleted since the event was sent)."""


class Refused(PermanentError):
    """The registry refused credentials a caller brought (their own registry token)."""


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 300.0) -> float:
    """Exponential backoff with "equal jitter" for the ``attempt``-th retry (1-based).

    Half the delay is fixed, so a retry never comes right back; the random
    half keeps a fleet of workers from hitting a recovering registry in lockstep.
    """
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)
