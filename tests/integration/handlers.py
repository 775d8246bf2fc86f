"""Bus handlers for tests that make an event fail, wait or be counted, around ocicat's own indexer."""

from __future__ import annotations

from indexer.indexing import EventIndexer


class Step:
    """A bus handler whose second step is ``function(cur, payload)`` and whose finishing step, once per transaction,
    is ``finishing(cur)``; its first step hands the payload on."""

    def __init__(self, function, finishing=lambda cur: None):
        self.function = function
        self.finishing = finishing

    def prepare(self, payload):
        return payload

    def apply(self, cur, payload, later: list) -> None:
        self.function(cur, payload)

    def finish(self, cur, later: list) -> None:
        self.finishing(cur)


def index_now(indexer: EventIndexer, cur, payload) -> None:
    """All of the indexer's steps inside the caller's transaction, for a test's handler to wrap."""
    later = []
    indexer.apply(cur, indexer.prepare(payload), later)
    indexer.finish(cur, later)
