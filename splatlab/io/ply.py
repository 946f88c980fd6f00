"""INRIA-layout Gaussian `.ply` (the interchange format), read and written with plyfile.

All vertex properties are float32: x y z, nx ny nz, f_dc_0..2, f_rest_* (channel-major),
opacity (logit), scale_0..2 (log), rot_0..3 (w x y z, unnormalised).  Extra per-Gaussian fields
of the model (e.g. a GES `shape`) are written as additional float properties `name` (1-D) or
`name_0..name_{k-1}` (2-D); INRIA-style readers select properties by name and ignore them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from plyfile import PlyData, PlyElement

from splatlab.gaussians import Gaussians, sh_degree_from_bases

from ._common import SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite

_PLY_TYPES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
    "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}
_MAX_HEADER = 1 << 20
CORE_PROPS = {"x", "y", "z", "nx", "ny", "nz", "opacity"} | {f"f_dc_{i}" for i in range(3)} \
    | {f"scale_{i}" for i in range(3)} | {f"rot_{i}" for i in range(4)}


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
        for e in elements:
            rs = e.row_size
            if rs is None:
                break  # list properties: sizes unknown up front; plyfile checks the rest
            need = rs * e.count
            if avail < need:
                have = max(avail, 0) // rs if rs else 0
                noun = "vertices" if e.name == "vertex" else f"'{e.name}' rows"
                raise SplatFormatError(
                    path, f"truncated: header says {e.count} {noun} but data holds {have}")
            avail -= need
    return header, size


def read_plydata(path) -> PlyData:
    try:
        return PlyData.read(os.fspath(path))
    except SplatFormatError:
        raise
    except Exception as e:  # plyfile raises PlyParseError, ValueError, EOFError, ...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SplatFormatError(path, f"corrupt PLY data: {msg}") from None


def _col(el, name: str) -> np.ndarray:
    return np.asarray(el.data[name], dtype=np.float32)


def read_ply(path, *, extras: bool = True) -> Gaussians:
    """Read a plain or PlayCanvas-compressed `.ply` (decided by the presence of a `chunk` element)."""
    header, _ = read_header(path)
    if header.element("chunk") is not None:
        from .compressed_ply import read_compressed_ply
        return read_compressed_ply(path, header=header)
    return read_plain_arrays(path, header, extras=extras).to_gaussians()


def read_plain_arrays(path, header: PlyHeader | None = None, *, extras: bool = True) -> SceneArrays:
    if header is None:
        header, _ = read_header(path)
    vinfo = header.element("vertex")
    if vinfo is None:
        raise SplatFormatError(path, "PLY has no 'vertex' element")
    names = vinfo.prop_names()
    need = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [n for n in need if n not in names]
    if missing:
        raise SplatFormatError(path, "not a Gaussian-splat PLY: vertex element lacks " + ", ".join(missing))
    rest = sorted((n for n in names if re.fullmatch(r"f_rest_\d+", n)), key=lambda s: int(s[7:]))
    if [int(n[7:]) for n in rest] != list(range(len(rest))) or len(rest) % 3:
        raise SplatFormatError(path, f"f_rest_* properties are not a contiguous multiple of 3 ({len(rest)} found)")
    k = len(rest) // 3
    try:
        sh_degree_from_bases(k + 1)
    except ValueError:
        raise SplatFormatError(path, f"{len(rest)} f_rest_* properties is not a full SH band set") from None
    n = vinfo.count
    if n == 0:
        raise SplatFormatError(path, "PLY holds no splats (element vertex 0)")
    ply = read_plydata(path)
    el = ply["vertex"]
    if len(el.data) != n:
        raise SplatFormatError(path, f"truncated: header says {n} vertices but data holds {len(el.data)}")
    stack = lambda cols: np.stack([_col(el, c) for c in cols], axis=1) if cols else np.zeros((n, 0), np.float32)  # noqa: E731
    means = stack(["x", "y", "z"])
    sh0 = stack(["f_dc_0", "f_dc_1", "f_dc_2"])
    # channel-major: f_rest[c*K + j] is coefficient j of channel c
    shN = stack(rest).reshape(n, 3, k).transpose(0, 2, 1).copy()
    ex: dict[str, np.ndarray] = {}
    if extras:
        ex = _collect_extras(vinfo, el, set(rest))
    scene = SceneArrays(means, stack(["rot_0", "rot_1", "rot_2", "rot_3"]), stack(["scale_0", "scale_1", "scale_2"]),
                        _col(el, "opacity"), sh0, shN, ex)
    check_finite(path, scene)
    return scene


def _collect_extras(vinfo: PlyElementInfo, el, skip: set[str]) -> dict[str, np.ndarray]:
    groups: dict[str, list[tuple[int, str]]] = {}
    singles: list[str] = []
    for name, typ in vinfo.props:
        if name in CORE_PROPS or name in skip or isinstance(typ, tuple) or "." in name or not name:
            continue
        m = re.fullmatch(r"(.+)_(\d+)", name)
        if m:
            groups.setdefault(m.group(1), []).append((int(m.group(2)), name))
        else:
            singles.append(name)
    out: dict[str, np.ndarray] = {}
    for base, items in groups.items():
        items.sort()
        if [i for i, _ in items] == list(range(len(items))) and base not in singles:
            out[base] = np.stack([_col(el, nm) for _, nm in items], axis=1)
        else:
            for _, nm in items:
                out[nm] = _col(el, nm)
    for nm in singles:
        out[nm] = _col(el, nm)
    from splatlab.gaussians import CORE_FIELDS
    return {k: v for k, v in out.items() if k not in CORE_FIELDS}


def ply_vertex_array(scene: SceneArrays, *, extras: bool = True) -> np.ndarray:
    n = len(scene)
    k = scene.shN.shape[1]
    cols: list[tuple[str, np.ndarray]] = []
    for i, c in enumerate("xyz"):
        cols.append((c, scene.means[:, i]))
    zeros = np.zeros(n, np.float32)
    cols += [("nx", zeros), ("ny", zeros), ("nz", zeros)]
    cols += [(f"f_dc_{i}", scene.sh0[:, i]) for i in range(3)]
    rest = scene.shN.transpose(0, 2, 1).reshape(n, 3 * k)  # channel-major
    cols += [(f"f_rest_{i}", rest[:, i]) for i in range(3 * k)]
    cols.append(("opacity", scene.opacities))
    cols += [(f"scale_{i}", scene.scales[:, i]) for i in range(3)]
    cols += [(f"rot_{i}", scene.quats[:, i]) for i in range(4)]
    if extras:
        taken = {c for c, _ in cols}
        for name, val in scene.extras.items():
            v = np.asarray(val, dtype=np.float32).reshape(n, -1) if np.asarray(val).ndim != 1 else np.asarray(val, np.float32)
            new = [(name, v)] if v.ndim == 1 else [(f"{name}_{i}", v[:, i]) for i in range(v.shape[1])]
            if any(c in taken for c, _ in new):
                continue  # would shadow a standard property: leave it out
            cols += new
            taken.update(c for c, _ in new)
    arr = np.empty(n, dtype=[(c, "<f4") for c, _ in cols])
    for c, v in cols:
        arr[c] = v
    return arr


def write_ply(path, gaussians: Gaussians | SceneArrays, *, extras: bool = True, order=None) -> None:
    """Write an INRIA-layout binary little-endian `.ply` (exact: float32 in, float32 out)."""
    from ._common import check_order, check_writable
    scene = as_arrays(gaussians)
    check_writable(path, scene)
    if order is not None:
        scene = scene.take(check_order(path, order, len(scene)))
    el = PlyElement.describe(ply_vertex_array(scene, extras=extras), "vertex")
    with atomic_write(path) as fh:
        PlyData([el], text=False, byte_order="<").write(fh)
