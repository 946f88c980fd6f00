"""PLY header parsing shared by the plain and the compressed `.ply` codecs (checks a header's
sizes against the file before any data is read)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from plyfile import PlyData

from ._common import SplatFormatError

_PLY_TYPES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
    "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}
_MAX_HEADER = 1 << 20

@dataclass
class PlyElementInfo:
    name: str
    count: int
    props: list  # (name, type) or (name, ("list", count_type, item_type))

    @property
    def row_size(self) -> int | None:
        if any(isinstance(t, tuple) for _, t in self.props):
            return None
        return sum(_PLY_TYPES[t] for _, t in self.props)

    def prop_names(self) -> list[str]:
        return [n for n, _ in self.props]


@dataclass
class PlyHeader:
    format: str
    elements: list
    comments: list
    header_size: int

    def element(self, name: str) -> PlyElementInfo | None:
        for e in self.elements:
            if e.name == name:
                return e
        return None


def read_header(path) -> tuple[PlyHeader, int]:
    """Parse and sanity-check a PLY header; returns (header, file size).

    Raises SplatFormatError for a missing magic, a malformed header, or binary data shorter than
    the header promises.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(min(size, _MAX_HEADER))
    except IsADirectoryError:
        raise SplatFormatError(path, "is a directory, not a PLY file") from None
    except OSError as e:
        raise SplatFormatError(path, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise SplatFormatError(path, "empty file (0 bytes)")
    if not (head.startswith(b"ply\n") or head.startswith(b"ply\r\n")):
        raise SplatFormatError(path, "not a PLY file (missing 'ply' magic)")
    m = re.search(rb"end_header\r?\n", head)
    if m is None:
        if size <= _MAX_HEADER:
            raise SplatFormatError(path, "truncated or malformed PLY header (no end_header line)")
        raise SplatFormatError(path, "PLY header too long (no end_header in the first 1 MiB)")
    try:
        text = head[: m.start()].decode("ascii")
    except UnicodeDecodeError:
        raise SplatFormatError(path, "PLY header is not ASCII text") from None
    fmt = None
    elements: list[PlyElementInfo] = []
    comments: list[str] = []
    for lineno, line in enumerate(text.splitlines()[1:], start=2):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key in ("comment", "obj_info"):
            comments.append(line.split(None, 1)[1] if len(parts) > 1 else "")
        elif key == "format":
            if len(parts) != 3 or parts[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise SplatFormatError(path, f"bad PLY format line {line.strip()!r}")
            fmt = parts[1]
        elif key == "element":
            if len(parts) != 3 or not parts[2].isdigit():
                raise SplatFormatError(path, f"bad PLY element line {lineno}: {line.strip()!r}")
            elements.append(PlyElementInfo(parts[1], int(parts[2]), []))
        elif key == "property":
            if not elements:
                raise SplatFormatError(path, f"PLY property before any element on line {lineno}")
            if len(parts) == 3 and parts[1] in _PLY_TYPES:
                elements[-1].props.append((parts[2], parts[1]))
            elif len(parts) == 5 and parts[1] == "list" and parts[2] in _PLY_TYPES and parts[3] in _PLY_TYPES:
                elements[-1].props.append((parts[4], ("list", parts[2], parts[3])))
            else:
                raise SplatFormatError(path, f"bad PLY property line {lineno}: {line.strip()!r}")
        else:
            raise SplatFormatError(path, f"unknown PLY header keyword {key!r} on line {lineno}")
    if fmt is None:
        raise SplatFormatError(path, "PLY header has no format line")
    header = PlyHeader(fmt, elements, comments, m.end())
    if fmt != "ascii":
        avail = size - header.header_size
        fixed = True
        for e in elements:
            rs = e.row_size
            if rs is None:
                fixed = False
                break  # list properties: sizes unknown up front; plyfile checks the rest
            need = rs * e.count
            if avail < need:
                have = max(avail, 0) // rs if rs else 0
                noun = "vertices" if e.name == "vertex" else f"'{e.name}' rows"
                raise SplatFormatError(
                    path, f"truncated: header says {e.count} {noun} but data holds {have}")
            avail -= need
        if fixed and avail > 0:
            raise SplatFormatError(path, f"trailing data: {avail} bytes after the last element the header declares")
    return header, size


def read_plydata(path) -> PlyData:
    try:
        return PlyData.read(os.fspath(path))
    except SplatFormatError:
        raise
    except Exception as e:  # plyfile raises PlyParseError, ValueError, EOFError, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SplatFormatError(path, f"corrupt PLY data: {msg}") from None


