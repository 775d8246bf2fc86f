"""Helm chart layers (the chart ``.tgz``): read once, streaming, into what the catalog stores.

The chart layer is untrusted input: anyone who can push
can hand us a hostile archive. It is never extracted and nothing is written to
disk: tarfile reads it in stream mode and only the few files the catalog keeps
are held in memory, each at most ``max_file`` bytes. A refused archive raises
ChartArchiveError with a one-line reason that is stored on the manifest.

Where each hazard is stopped:

- gzip bombs: ``_Inflater`` is the gzip decoder under tarfile. It counts bytes
  as zlib makes them and stops at a budget of ``max_total`` plus tar framing,
  so nothing tarfile does (reading headers, skipping data) can inflate more
  than that. A file whose header declares too much is refused before any of its
  data is inflated.
- Helm's loader rules (helm/helm ``pkg/chart/loader/archive``): one
  top-level directory, stripped; no ``Chart.yaml`` at the archive root; no
  absolute paths, ``..``, drive letters or backslashes; 100 MiB in total and
  5 MiB per file; PAX headers are applied by tarfile, never seen as files;
  UTF-8 BOMs stripped. Links, devices and FIFOs are refused outright: a chart
  never needs them.
- tarfile reads a PAX or GNU long-name header into memory whole, whatever size
  it declares; ``_TarInfo`` refuses one over 1 MiB first, as Go's archive/tar
  (and so Helm) does.
- YAML: see ``untrusted.yaml_document``.
- Storage: PostgreSQL text and JSONB cannot hold NUL or lone surrogates, so
  every string returned has them replaced with U+FFFD, the character that
  undecodable bytes already become.
"""

from __future__ import annotations

import json
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from ocicat.untrusted import YAMLError, json_object, storable, yaml_document

MiB = 1024 * 1024
MAX_TOTAL = 100 * MiB  # Helm's MaxDecompressedChartSize: all files together, decompressed
MAX_FILE = 5 * MiB  # Helm's MaxDecompressedFileSize
MAX_ENTRIES = 10_000  # Helm has no count limit; real charts, subcharts included, have hundreds
# Input read is bounded separately because some input inflates to nothing (a run
# of empty deflate blocks). Deflate adds well under 1% to incompressible data, so
# no chart within MAX_TOTAL compresses to more than this.
MAX_COMPRESSED = 128 * MiB
MAX_EXTENSION_HEADER = 1 * MiB  # Go archive/tar's maxSpecialFileSize
# Template and CRD contents kept for comparing versions (ocicat.compare): each file up to MAX_SOURCE bytes, all of a
# chart's together up to MAX_SOURCES; past either, the rest of a file is dropped and the file marked truncated. Real
# templates are a few KiB, and the largest charts' 200 templates and CRDs come to a few MiB.
MAX_SOURCE = 1 * MiB
MAX_SOURCES = 16 * MiB

_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_EXTENSION_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_DRIVE = re.compile(r"[A-Za-z]:")
_README_RANK = {"readme.md": 0, "readme.txt": 1, "readme": 2}  # lower is preferred
_KEPT = ("Chart.yaml", "Chart.lock", "requirements.yaml", "values.yaml", "values.schema.json")  # read whole
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")  # what Helm installs from crds/
# A NUL in JSON text is the escape \u0000 whose backslash follows an even number of
# backslashes (escaped backslashes come in pairs); after an odd number, that
# backslash is itself escaped and the text stands for a literal "\u0000".
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


class ChartArchiveError(ValueError):
    """The chart archive is refused; the message is a one-line reason to show users."""


@dataclass(frozen=True)
class ChartContents:
    """What the catalog keeps from a chart archive, all about the top chart only.

    Subchart files (under ``charts/``) count towards the limits, ``files`` and
    ``total_bytes``, but nothing else here describes them.
    """

    chart_yaml: dict  # Chart.yaml, always present (Helm cannot load a chart without it)
    readme: str | None  # README.md, else README.txt, else README at the chart root (any case)
    values: str | None  # values.yaml as text
    values_schema: dict | None  # values.schema.json; None with a warning if it is not a JSON object
    templates: list[str]  # paths under templates/, relative to the chart root, sorted
    crds: list[str]  # .yaml/.yml/.json paths under crds/, sorted
    # the templates' and CRDs' contents, by path: content (cut at the caps, see MAX_SOURCE), size in the archive,
    # whether it was cut (what writes.Details.sources holds)
    sources: list[dict]
    chart_lock: dict | None  # Chart.lock
    requirements: list[dict] | None  # requirements.yaml ``dependencies`` (apiVersion v1 charts)
    files: int  # regular files in the archive
    total_bytes: int  # their decompressed size
    warnings: list[str]  # accepted, but worth telling the chart's owner


def read_chart_archive(
    stream: BinaryIO,
    *,
    max_total: int = MAX_TOTAL,
    max_file: int = MAX_FILE,
    max_entries: int = MAX_ENTRIES,
    max_compressed: int = MAX_COMPRESSED,
) -> ChartContents:
    """Read a chart ``.tgz`` from ``stream``; ChartArchiveError if it is refused."""
    # What the tar stream may add to the file data: per entry a header, up to a
    # block of padding and a small PAX header with its own header (long names);
    # then one large extension header and the end-of-archive record.
    framing = max_entries * 4 * tarfile.BLOCKSIZE + MAX_EXTENSION_HEADER + tarfile.RECORDSIZE
    inflater = _Inflater(stream, max_compressed=max_compressed, max_inflated=max_total + framing)
    reader = _Reader(max_total=max_total, max_file=max_file, max_entries=max_entries)
    try:
        with tarfile.open(
            fileobj=inflater, mode="r|", bufsize=_CHUNK, tarinfo=_TarInfo, encoding="utf-8", errors="replace"
        ) as tar:
            for member in tar:
                reader.add(tar, member)
    except tarfile.TarError as exc:
        raise ChartArchiveError(f"not a valid tar archive: {exc}") from None
    except RecursionError:  # tarfile applies chained extension headers recursively
        raise ChartArchiveError("tar extension headers are nested too deeply") from None
    # Read to the gzip trailer, so a truncated or corrupt stream is refused even
    # when the tar part happens to end cleanly.
    inflater.finish()
    return reader.contents()


class _Inflater:
    """The gzip layer, as the file tarfile reads: inflates on demand and enforces the byte budgets."""

    def __init__(self, raw: BinaryIO, *, max_compressed: int, max_inflated: int):
        self._raw = raw
        self._max_compressed = max_compressed
        self._max_inflated = max_inflated
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing; checks CRC-32 and length at the end
        self._pending = b""  # compressed input zlib has not consumed yet
        self._compressed = 0
        self._inflated = 0

    def read(self, size: int) -> bytes:
        """At most ``size`` inflated bytes; b"" once the gzip stream has ended (data after it is ignored)."""
        if size <= 0:  # zlib takes a max_length of 0 to mean "no limit"
            return b""
        while not self._zlib.eof:
            if not self._pending:
                self._pending = self._raw.read(_CHUNK)
                if not self._pending:
                    raise ChartArchiveError(
                        "archive is empty" if self._compressed == 0 else "archive is truncated (gzip stream ends early)"
                    )
                self._compressed += len(self._pending)
                if self._compressed > self._max_compressed:
                    raise ChartArchiveError(f"compressed archive is larger than {_size(self._max_compressed)}")
            try:
                data = self._zlib.decompress(self._pending, size)
            except zlib.error as exc:
                raise ChartArchiveError(f"archive is not valid gzip data ({exc})") from None
            self._pending = self._zlib.unconsumed_tail
            if data:
                self._inflated += len(data)
                if self._inflated > self._max_inflated:
                    raise ChartArchiveError(f"archive inflates to more than {_size(self._max_inflated)}")
                return data
        return b""

    def finish(self) -> None:
        while self.read(_CHUNK):
            pass


class _TarInfo(tarfile.TarInfo):
    """A TarInfo that refuses an extension header too large to read, before tarfile reads it."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        info = super().frombuf(buf, encoding, errors)
        if info.type in _EXTENSION_TYPES and not 0 <= info.size <= MAX_EXTENSION_HEADER:
            raise ChartArchiveError(f"tar extension header of {info.size} bytes (limit {_size(MAX_EXTENSION_HEADER)})")
        return info


class _Reader:
    """Takes the archive's members in order and keeps what the catalog needs."""

    def __init__(self, *, max_total: int, max_file: int, max_entries: int):
        self.max_total = max_total
        self.max_file = max_file
        self.max_entries = max_entries
        self.entries = 0
        self.top: str | None = None  # the chart directory, which Helm strips
        self.paths: set[str] = set()  # every file, relative to the chart root
        self.total_bytes = 0
        self.kept: dict[str, bytes] = {}  # _KEPT files by path
        self.readme: bytes | None = None
        self.readme_rank = len(_README_RANK)
        self.templates: list[str] = []
        self.crds: list[str] = []
        self.sources: list[dict] = []
        self.source_budget = MAX_SOURCES

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise ChartArchiveError(f"archive has more than {self.max_entries} entries")
        path = self._chart_path(member.name)
        if member.isdir():
            return
        if member.issym() or member.islnk():
            raise ChartArchiveError(f"archive contains a link: {member.name!r}")
        if member.ischr() or member.isblk() or member.isfifo():
            raise ChartArchiveError(f"archive contains a device file or FIFO: {member.name!r}")
        if member.type not in _FILE_TYPES or member.sparse is not None:
            raise ChartArchiveError(f"archive contains an unsupported entry type {member.type!r}: {member.name!r}")
        if not path:
            raise ChartArchiveError(f"file outside the chart directory: {member.name!r}")
        if path in self.paths:
            raise ChartArchiveError(f"archive contains {member.name!r} twice")
        self.paths.add(path)
        # Sizes are checked from the header, before any of the data is inflated.
        if member.size < 0:
            raise ChartArchiveError(f"negative size for {member.name!r}")
        if member.size > self.max_file:
            raise ChartArchiveError(f"{path} is larger than the {_size(self.max_file)} limit for one file")
        self.total_bytes += member.size
        if self.total_bytes > self.max_total:
            raise ChartArchiveError(f"chart files add up to more than {_size(self.max_total)}")

        rank = _README_RANK.get(path.lower(), self.readme_rank)
        if path in _KEPT:
            self.kept[path] = tar.extractfile(member).read()
        elif rank < self.readme_rank:  # the first of equally good READMEs wins
            self.readme, self.readme_rank = tar.extractfile(member).read(), rank
        elif path.startswith("templates/"):
            self.templates.append(path)
            self._keep_source(tar, member, path)
        elif path.startswith("crds/") and path.lower().endswith(_MANIFEST_SUFFIXES):
            self.crds.append(path)
            self._keep_source(tar, member, path)
        # Anything else, subcharts under charts/ included, is counted and skipped.

    def _keep_source(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        """Keep a template's or CRD's text, as much of it as the caps leave (the rest is skipped, not inflated)."""
        kept = min(member.size, MAX_SOURCE, self.source_budget)
        self.source_budget -= kept
        data = tar.extractfile(member).read(kept) if kept else b""
        # A cut can fall inside a UTF-8 sequence: its bytes become U+FFFD, as undecodable bytes do anyway.
        self.sources.append({"path": path, "content": _text(data), "size": member.size,
                             "truncated": kept < member.size})

    def _chart_path(self, name: str) -> str:
        """``name`` relative to the chart directory ("" for the directory itself), checked like Helm's loader."""
        if "\\" in name:
            raise ChartArchiveError(f"backslash in archive path: {name!r}")
        if "\x00" in name:  # possible through a PAX path; Go's archive/tar (so Helm) refuses such a header
            raise ChartArchiveError(f"NUL in archive path: {name!r}")
        if name.startswith("/"):
            raise ChartArchiveError(f"absolute path in archive: {name!r}")
        parts = name.split("/")
        if ".." in parts:
            raise ChartArchiveError(f"archive path leaves the chart directory: {name!r}")
        if any(_DRIVE.match(part) for part in parts):
            raise ChartArchiveError(f"drive letter in archive path: {name!r}")
        if parts[0] == "Chart.yaml":
            raise ChartArchiveError("Chart.yaml is at the archive root, not in a chart directory")
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            raise ChartArchiveError(f"archive has more than one top-level directory: {self.top!r} and {parts[0]!r}")
        return "/".join(part for part in parts[1:] if part not in ("", "."))

    def contents(self) -> ChartContents:
        if not self.paths:
            raise ChartArchiveError("archive contains no files")
        if "Chart.yaml" not in self.kept:
            raise ChartArchiveError("archive has no Chart.yaml in its chart directory")
        chart_yaml = _yaml_map(self.kept["Chart.yaml"], "Chart.yaml")
        if not chart_yaml:
            raise ChartArchiveError("Chart.yaml is empty")
        warnings = []

        requirements = None
        if "requirements.yaml" in self.kept:
            requirements = _yaml_map(self.kept["requirements.yaml"], "requirements.yaml").get("dependencies") or []
            if not isinstance(requirements, list) or not all(isinstance(d, dict) for d in requirements):
                raise ChartArchiveError("requirements.yaml dependencies must be a list of maps")
            # Helm reads it whatever the apiVersion (a missing one means v1), and warns.
            if (chart_yaml.get("apiVersion") or "v1") != "v1":
                warnings.append("requirements.yaml is for apiVersion v1 charts; dependencies belong in Chart.yaml")

        values_schema = None
        if "values.schema.json" in self.kept:
            try:
                schema = json_object(self.kept["values.schema.json"].removeprefix(_BOM), "values.schema.json")
                values_schema = _json_value(schema, "values.schema.json")
            except ValueError as exc:
                warnings.append(f"{exc}; schema ignored")

        return ChartContents(
            chart_yaml=chart_yaml,
            readme=None if self.readme is None else _text(self.readme),
            values=_text(self.kept["values.yaml"]) if "values.yaml" in self.kept else None,
            values_schema=values_schema,
            templates=sorted(self.templates),
            crds=sorted(self.crds),
            sources=sorted(self.sources, key=lambda source: source["path"]),
            chart_lock=_yaml_map(self.kept["Chart.lock"], "Chart.lock") if "Chart.lock" in self.kept else None,
            requirements=requirements,
            files=len(self.paths),
            total_bytes=self.total_bytes,
            warnings=warnings,
        )


# -- YAML -----------------------------------------------------------------------

def _yaml_map(data: bytes, what: str) -> dict:
    """The first YAML document in ``data`` as a JSON-compatible map ({} if there is none).

    Only the first document is read, like Helm's yaml.Unmarshal.
    """
    try:
        doc = yaml_document(_text(data), what)
    except YAMLError as exc:
        raise ChartArchiveError(str(exc)) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ChartArchiveError(f"{what} is not a YAML map")
    return _json_value(doc, what)


# -- text and JSON ---------------------------------------------------------------


def _text(data: bytes) -> str:
    return storable(data.removeprefix(_BOM).decode("utf-8", errors="replace"))


def _json_value(doc: dict, what: str) -> dict:
    """``doc`` as plain JSON types that PostgreSQL's JSONB accepts.

    Round-tripping through json refuses what JSON has no form for (NaN,
    explicit !!binary or !!set tags). On the way, NUL and lone surrogates are
    replaced in the JSON text (C speed; walking the strings of a large
    values.schema.json in Python costs more than the rest of the parse).
    """
    try:
        # Lone surrogates stay raw with ensure_ascii off, for storable to replace.
        text = storable(json.dumps(doc, ensure_ascii=False, allow_nan=False))
        if "\\u0000" in text:  # the regex is slow (40 MB/s); the substring search is not
            text = _ESCAPED_NUL.sub(r"\1\\ufffd", text)
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ChartArchiveError(f"{what} holds a value JSON cannot represent ({exc})") from None
    except RecursionError:
        raise ChartArchiveError(f"{what} is nested too deeply") from None


def _size(n: int) -> str:
    return f"{n / MiB:.4g} MiB" if n >= MiB else f"{n} bytes"
