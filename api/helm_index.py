"""A Helm repository's ``index.yaml``, written from catalog rows, and the cache of written indexes.

The index is written in JSON, the form ``helm repo index --json`` writes: JSON is YAML, so every reader of an
index takes it (Helm since 3.13 parses a JSON body with encoding/json, older Helm and Argo CD, Renovate and the
rest through their YAML parsers), and it is written ten times faster than libyaml's emitter can (4.4 s for 10,000
versions against 0.1 s, measured; YAML's representer is Python). One entry per line keeps it readable and greppable.

Keys are in alphabetical order, as Helm writes them, and the bytes depend only on the rows, so an unchanged
catalog gives an unchanged index (Flux makes a new artifact revision whenever the bytes change).

Each entry carries only values of the types Helm's structs decode: one chart with a number where Helm wants a string
would make Helm (encoding/json, or strict YAML) refuse the whole index, and a chart pushed with another client than
Helm can hold anything.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import quote

# chart.Metadata's string fields (JSON name: column)
_STRINGS = {"apiVersion": "api_version", "appVersion": "app_version", "condition": "condition",
            "description": "description", "home": "home", "icon": "icon", "kubeVersion": "kube_version",
            "name": "name", "tags": "tags", "type": "type", "version": "version"}
_MAINTAINER = ("email", "name", "url")
# chart.Dependency's fields by type
_DEPENDENCY_STRINGS = ("alias", "condition", "name", "repository", "version")


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dependency(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    out = {k: value[k] for k in _DEPENDENCY_STRINGS if isinstance(value.get(k), str) and value[k]}
    if _strings(value.get("tags")):
        out["tags"] = _strings(value["tags"])
    if isinstance(value.get("enabled"), bool) and value["enabled"]:
        out["enabled"] = True
    if isinstance(value.get("import-values"), list) and value["import-values"]:
        out["import-values"] = value["import-values"]
    return out or None


def entry(row: dict, url: str) -> dict:
    """One chart version as ``helm repo index`` lists it: every Chart.yaml field that is set, then ``created``
    (when the catalog saw it pushed), ``digest`` (the SHA-256 of the archive's bytes, which Helm 4 uses as its
    cache key: the chart layer's digest is exactly that) and ``urls``."""
    out = {key: row[column] for key, column in _STRINGS.items() if isinstance(row[column], str) and row[column]}
    for key in ("keywords", "sources"):
        if _strings(row[key]):
            out[key] = _strings(row[key])
    maintainers = [{k: m[k] for k in _MAINTAINER if isinstance(m.get(k), str) and m[k]}
                   for m in row["maintainers"] if isinstance(m, dict)] if isinstance(row["maintainers"], list) else []
    if any(maintainers):
        out["maintainers"] = [m for m in maintainers if m]
    dependencies = [d for d in map(_dependency, row["dependencies"] or []) if d] \
        if isinstance(row["dependencies"], list) else []
    if dependencies:
        out["dependencies"] = dependencies
    annotations = {k: v for k, v in (row["annotations"] or {}).items() if isinstance(v, str)} \
        if isinstance(row["annotations"], dict) else {}
    if annotations:
        out["annotations"] = annotations
    if row["deprecated"]:
        out["deprecated"] = True
    algorithm, _, hexdigest = row["archive_digest"].partition(":")
    if algorithm == "sha256":
        out["digest"] = hexdigest
    out["created"] = row["pushed_at"].isoformat()
    out["urls"] = [url]
    return out


def repository_of(namespace: str, public_url: str) -> dict:
    """The Helm repository whose own level holds a namespace's charts: its URL, and a name to ``helm repo add``
    it by (the namespace's last part)."""
    return {"name": namespace.rpartition("/")[2] or "ocicat", "url": f"{public_url}/helm/{quote(namespace)}".rstrip("/")}


def chart_url(row: dict, namespace: str) -> str:
    """An archive's URL, relative to the index of ``namespace``: its own namespace's ``charts/<name>-<version>.tgz``,
    so Helm sends the index's credentials with it (same origin), and a chart has one URL in every index."""
    below = row["namespace"][len(namespace) + 1 if namespace else 0:]
    return f"{below + '/' if below else ''}charts/{row['name']}-{row['version']}.tgz"


def write(rows: Iterable[dict], namespace: str, generated: datetime) -> Iterator[bytes]:
    """The index, in pieces: rows come grouped by chart name, in the order Helm lists versions (newest first)."""
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    yield b'{"apiVersion":"v1","entries":{'
    current = None
    for row in rows:
        if row["name"] != current:
            yield (b"]," if current is not None else b"") + b"\n" + dumps(row["name"]).encode() + b":[\n"
            current = row["name"]
        else:
            yield b",\n"
        yield dumps(entry(row, chart_url(row, namespace))).encode()
    yield (b"]" if current is not None else b"") + b"\n},\"generated\":" + dumps(generated.isoformat()).encode() + b"}\n"


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

    def get_or_write(self, etag: str, write: Callable[[], Index]) -> Index:
        """The index of ``etag``, written by ``write`` unless another thread has it or is writing it. What
        ``write`` returns may be newer (a later ETag): the catalog changed in between; it is kept under its own."""
        with self._lock:
            writing = self._writing.setdefault(etag, threading.Lock())
        with writing:
            index = self.get(etag)
            if index is None:
                index = write()
                self._put(index)
            with self._lock:
                self._writing.pop(etag, None)
            return index

    def _put(self, index: Index) -> None:
        with self._lock:
            if index.etag in self._items or len(index.gzipped) > self.max_bytes:
                return
            self._items[index.etag] = index
            self._bytes += len(index.gzipped)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.gzipped)
