"""Splat file I/O: one registry from file extension (and magic bytes) to codec.

    read_splats(path) -> Gaussians
    write_splats(path, gaussians, **opts)
    formats() -> list[Format]

Formats: INRIA `.ply`, PlayCanvas compressed `.ply` (`*.compressed.ply` when writing; detected by its
`chunk` element when reading), PlayCanvas `.sog` v2 (ZIP bundle, or a folder / `meta.json`),
Niantic `.spz` (v2/v3 gzip, v4 with the optional `zstandard` package), antimatter15 `.splat`.
Every write is atomic (temp file + rename); every bad input raises `SplatFormatError`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from splatlab.gaussians import Gaussians

from ._common import SplatFormatError, morton_order
from .compressed_ply import write_compressed_ply
from .ply import read_ply, write_ply
from .sog import read_sog, sog_texture_size, write_sog
from .splat import read_splat, write_splat
from .spz import read_spz, write_spz

__all__ = ["Format", "SplatFormatError", "formats", "get_format", "detect_format", "read_splats", "write_splats",
           "morton_order", "sog_texture_size"]


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    description: str
    lossy: bool
    max_sh_degree: int
    read: Callable[..., Gaussians]
    write: Callable[..., None]


_FORMATS = [
    Format("ply", (".ply",), "INRIA 3DGS PLY (float32, exact)", False, 4, read_ply, write_ply),
    Format("compressed-ply", (".compressed.ply",), "PlayCanvas/SuperSplat compressed PLY", True, 3,
           read_ply, write_compressed_ply),
    Format("sog", (".sog", "meta.json"), "PlayCanvas SOG v2 (WebP textures; .sog zip or folder)", True, 3,
           read_sog, write_sog),
    Format("spz", (".spz",), "Niantic SPZ (gzip; writes v3, reads v2/v3, v4 with zstandard)", True, 3,
           read_spz, write_spz),
    Format("splat", (".splat",), "antimatter15 .splat (32 bytes/splat, no SH)", True, 0, read_splat, write_splat),
]
_BY_NAME = {f.name: f for f in _FORMATS}


def formats() -> list[Format]:
    """All registered formats (name, extensions, description, lossy, max SH degree, read, write)."""
    return list(_FORMATS)


def get_format(name: str) -> Format:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown splat format {name!r}; known: {', '.join(_BY_NAME)}") from None


def _by_extension(path: str) -> Format | None:
    low = os.path.basename(path.rstrip("/" + os.sep)).lower()
    if low.endswith(".compressed.ply"):
        return _BY_NAME["compressed-ply"]
    if low.endswith(".json"):
        return _BY_NAME["sog"]
    for f in _FORMATS:
        if any(low.endswith(e) for e in f.extensions):
            return f
    return None


def _sniff(path: str) -> Format | None:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith((b"ply\n", b"ply\r\n")):
        if b"element chunk" in head.split(b"end_header", 1)[0]:
            return _BY_NAME["compressed-ply"]
        return _BY_NAME["ply"]
    if head.startswith(b"PK\x03\x04"):
        return _BY_NAME["sog"]
    if head.startswith((b"\x1f\x8b", b"NGSP")):
        return _BY_NAME["spz"]
    return None


def detect_format(path, *, for_write: bool = False) -> Format:
    """The codec for `path`: by extension when writing; by magic bytes, then extension, when reading."""
    p = os.fspath(path)
    if for_write:
        if os.path.isdir(p):
            return _BY_NAME["sog"]
        f = _by_extension(p)
        if f is None:
            ext = os.path.splitext(p)[1] or "(none)"
            raise SplatFormatError(p, f"unsupported output extension {ext}; use one of "
                                      ".ply .compressed.ply .sog meta.json .spz .splat")
        return f
    if os.path.isdir(p):
        if os.path.isfile(os.path.join(p, "meta.json")):
            return _BY_NAME["sog"]
        raise SplatFormatError(p, "is a directory without a meta.json (not a SOG folder)")
    if not os.path.exists(p):
        raise SplatFormatError(p, "no such file")
    try:
        if os.path.getsize(p) == 0:
            raise SplatFormatError(p, "empty file (0 bytes)")
        sniffed = _sniff(p)
    except OSError as e:
        raise SplatFormatError(p, f"cannot read: {e.strerror or e}") from None
    if sniffed is not None:
        return sniffed
    f = _by_extension(p)
    if f is None:
        ext = os.path.splitext(p)[1] or "(none)"
        raise SplatFormatError(p, f"unrecognised splat file: extension {ext} is not supported and no known magic bytes")
    return f  # its reader reports the bad magic / size in its own terms


def read_splats(path, *, format: str | None = None, **opts) -> Gaussians:
    """Read any supported splat file into a `Gaussians` model."""
    f = get_format(format) if format else detect_format(path)
    return f.read(os.fspath(path), **opts)


def write_splats(path, gaussians: Gaussians, *, format: str | None = None, **opts) -> None:
    """Write `gaussians` in the format named by `format` or by the path's extension (atomically).

    Only the INRIA `.ply` carries a method's extra fields and name; every other format gets the
    method's closest plain-3DGS version (`Method.plain_gaussians`, e.g. GES shapes baked into scales)."""
    f = get_format(format) if format else detect_format(path, for_write=True)
    if f.name != "ply" and isinstance(gaussians, Gaussians) and (gaussians.method is not None or gaussians.extra_names()):
        from splatlab.render import method_of
        gaussians = method_of(gaussians).plain_gaussians(gaussians)
    f.write(os.fspath(path), gaussians, **opts)
