"""Chart archives built in memory, well-formed and hostile, for the chart archive tests and bench/parse.py."""

from __future__ import annotations

import io
import struct
import tarfile
import zlib

MiB = 1024 * 1024
CHART_YAML = "apiVersion: v2\nname: demo\nversion: 0.1.0\n"
END_OF_ARCHIVE = bytes(2 * tarfile.BLOCKSIZE)


def tgz(entries, *, level: int = 6) -> bytes:
    """A .tgz of ``entries``: (name or TarInfo, data) pairs, data as bytes, str, or None for no data."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=level, format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = name if isinstance(name, tarfile.TarInfo) else tarfile.TarInfo(name)
            if isinstance(data, str):
                data = data.encode()
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def chart_tgz(files: dict, *, top: str = "demo", level: int = 6) -> bytes:
    """A chart archive: ``files`` (path inside the chart -> content) under one top-level directory."""
    return tgz(((f"{top}/{path}", data) for path, data in files.items()), level=level)


def entry(name: str, kind: bytes, **attributes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One ustar header block (the size may be far more than any data that follows)."""
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tiny_files_tar(count: int, top: str = "demo") -> bytes:
    """An uncompressed tar of ``count`` empty files, fast: one header template, patched per file.

    tarfile's own writer takes about 25 us a header, which is seconds for 100k.
    """
    template = bytearray(header(f"{top}/templates/f{0:08d}.yaml", 0))
    prefix_length = len(f"{top}/templates/f")
    blocks = []
    for i in range(count):
        template[prefix_length : prefix_length + 8] = b"%08d" % i
        template[148:156] = b" " * 8  # the checksum is computed with its own field as spaces
        template[148:156] = b"%06o\0 " % sum(template)
        blocks.append(bytes(template))
    return b"".join(blocks) + END_OF_ARCHIVE


def gzip_pieces(pieces) -> bytes:
    """gzip of the concatenated ``pieces``: bytes as they are, ints as that many zero bytes (whole MiB).

    A gigabyte of zeros takes zlib seconds to compress; here one MiB of zeros is
    compressed once, ending in a full flush (which resets the compressor), so
    the same compressed segment is valid anywhere in the stream and is simply
    repeated. 1 GiB of zeros becomes about 1 MiB of gzip, in well under a second.
    """
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    fresh = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(MiB)
    zero_segment = fresh.compress(zeros) + fresh.flush(zlib.Z_FULL_FLUSH)
    out = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"]  # gzip header: deflate, no name, no mtime
    crc = length = 0
    for piece in pieces:
        if isinstance(piece, int):
            megabytes, rest = divmod(piece, MiB)
            assert rest == 0, "zeros come in whole MiB"
            out.extend([zero_segment] * megabytes)
            for _ in range(megabytes):
                crc = zlib.crc32(zeros, crc)
            length += piece
        else:
            out.append(deflate.compress(piece) + deflate.flush(zlib.Z_FULL_FLUSH))
            crc = zlib.crc32(piece, crc)
            length += len(piece)
    out.append(deflate.flush(zlib.Z_FINISH))
    out.append(struct.pack("<II", crc, length & 0xFFFFFFFF))
    return b"".join(out)


def one_file_bomb(size: int = 1024 * MiB) -> bytes:
    """A chart whose values.yaml is ``size`` bytes of zeros."""
    return gzip_pieces([header("demo/Chart.yaml", 0), header("demo/values.yaml", size), size, END_OF_ARCHIVE])


def many_files_bomb(count: int, size: int = 5 * MiB) -> bytes:
    """``count`` files of ``size`` zeros each: every one within the per-file limit."""
    pieces = [header("demo/Chart.yaml", 0)]
    for i in range(count):
        pieces += [header(f"demo/templates/f{i}.yaml", size), size]
    return gzip_pieces(pieces + [END_OF_ARCHIVE])


def trailing_zeros_bomb(size: int = 1024 * MiB) -> bytes:
    """A small valid chart followed, inside the same gzip stream, by ``size`` zeros after the tar's end."""
    chart = CHART_YAML.encode()
    padding = bytes(-len(chart) % tarfile.BLOCKSIZE)
    return gzip_pieces([header("demo/Chart.yaml", len(chart)), chart + padding, END_OF_ARCHIVE, size])


class CountingReader:
    """A file object over ``data`` that records how many bytes were read from it."""

    def __init__(self, data: bytes):
        self._stream = io.BytesIO(data)
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.consumed += len(chunk)
        return chunk
