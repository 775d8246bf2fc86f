"""A Helm repository's ``index.yaml``, put together from the entries the catalog writes, and the cache of written
indexes.

The index is written in JSON, the form ``helm repo index --json`` writes: JSON is YAML, so every reader of an
index takes it (Helm since 3.13 parses a JSON body with encoding/json, older Helm and Argo CD, Renovate and the
rest through their YAML parsers), and it is written many times faster than YAML can be (libyaml's emitter took
4.4 s for 10,000 versions, its representer being Python; PostgreSQL writes the JSON entries, see
migrations/functions/helm_index_entry.sql). One entry per line keeps it readable and greppable.

Keys are in alphabetical order, as Helm writes them, and the bytes depend only on the catalog, so an unchanged
catalog gives an unchanged index (Flux makes a new artifact revision whenever the bytes change).
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import quote


def repository_of(namespace: str, public_url: str) -> dict:
    """The Helm repository whose own level holds a namespace's charts: its URL, and a name to ``helm repo add``
    it by (the namespace's last part)."""
    return {"name": namespace.rpartition("/")[2] or "ocicat", "url": f"{public_url}/helm/{quote(namespace)}".rstrip("/")}


# Characters JSON may hold as they are but YAML may not (outside YAML 1.1's printable set: go-yaml, js-yaml and
# PyYAML refuse a document with one) or reads as line breaks (NEL, LS, PS), escaped as JSON writes any character:
# one chart's description must neither break its index nor change in it.
_NOT_YAML = {c: f"\\u{c:04x}" for c in (*range(0x7F, 0xA0), 0x2028, 0x2029, 0xFFFE, 0xFFFF)}
# The same characters in UTF-8, searched for first (in bytes, fast): translate() is slow, and rarely needed.
_HAS_NOT_YAML = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbf[\xbe\xbf]")


def write(entries: Iterable[tuple[str, str]], generated: datetime) -> Iterator[bytes]:
    """The index, in pieces, from (chart name, entry as JSON text) grouped by chart name, in the order Helm lists
    versions (newest first): the catalog writes the entries (ocicat.catalog.helm_repository)."""
    yield b'{"apiVersion":"v1","entries":{'
    current = None
    for name, text in entries:
        if name != current:
            yield (b"]," if current is not None else b"") + b"\n" + json.dumps(name).encode() + b":[\n"
            current = name
        else:
            yield b",\n"
        data = text.encode()
        yield text.translate(_NOT_YAML).encode() if _HAS_NOT_YAML.search(data) else data
    yield (b"]" if current is not None else b"") + b"\n},\"generated\":" + json.dumps(generated.isoformat()).encode() + b"}\n"


@dataclass(frozen=True)
class Index:
    """A written index: gzipped (what almost every client accepts, and a tenth of the size to keep), its size
    unzipped, and what it is validated by."""

    gzipped: bytes
    size: int
    etag: str
    last_modified: datetime


def gzipped(pieces: Iterable[bytes]) -> tuple[bytes, int]:
    """The pieces gzipped (no timestamp in the header, so equal input gives equal bytes), and their size."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    out, size = [], 0
    for piece in pieces:
        size += len(piece)
        out.append(compressor.compress(piece))
    out.append(compressor.flush())
    return b"".join(out), size


def gunzipped(data: bytes, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """For the rare client that does not accept gzip: unzipped a piece at a time, never whole."""
    decompressor = zlib.decompressobj(31)
    for start in range(0, len(data), chunk):
        yield decompressor.decompress(data[start:start + chunk])
    yield decompressor.flush()


class IndexCache:
    """Written indexes by ETag, the least recently used dropped past ``max_bytes``; one writer per ETag at a time,
    so clients polling a large index together (Flux, Argo CD and people) cost one writing."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Index] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._writing: dict[str, threading.Lock] = {}

    def get(self, etag: str) -> Index | None:
        with self._lock:
            index = self._items.get(etag)
            if index is not None:
                self._items.move_to_end(etag)
            return index

    def get_or_write(self, etag: str, write: Callable[[], Index | None]) -> Index | None:
        """The index of ``etag``, written by ``write`` unless another thread has it or is writing it. What
        ``write`` returns may be newer (a later ETag): the catalog changed in between; it is kept under its own.
        None when ``write`` found nothing to list."""
        with self._lock:
            writing = self._writing.setdefault(etag, threading.Lock())
        try:
            with writing:
                index = self.get(etag)
                if index is None:
                    index = write()
                    if index is not None:
                        self._put(index)
                return index
        finally:
            with self._lock:
                self._writing.pop(etag, None)

    def _put(self, index: Index) -> None:
        with self._lock:
            if index.etag in self._items or len(index.gzipped) > self.max_bytes:
                return
            self._items[index.etag] = index
            self._bytes += len(index.gzipped)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.gzipped)
