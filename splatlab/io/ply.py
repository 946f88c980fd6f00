"""INRIA-layout Gaussian `.ply` (the interchange format), read and written with plyfile.

All vertex properties are float32: x y z, nx ny nz, f_dc_0..2, f_rest_* (channel-major),
opacity (logit), scale_0..2 (log), rot_0..3 (w x y z, unnormalised).  Extra per-Gaussian fields
of the model (e.g. a GES `shape`) are written as additional float properties `name` (1-D) or
`name_0..name_{k-1}` (2-D); INRIA-style readers select properties by name and ignore them.
The method that made the scene and its options are one header comment,
`comment splatlab-method {"name": ..., "options": {...}}`, so the scene renders its method's way
when read back (readers that know nothing of it skip comments).
"""
from __future__ import annotations

import json
import re

import numpy as np
from plyfile import PlyData, PlyElement

from splatlab.gaussians import Gaussians, MethodSpec, sh_degree_from_bases

from ._common import SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite
from ._plyheader import PlyElementInfo, PlyHeader, read_header, read_plydata
from .compressed_ply import read_compressed_ply

METHOD_COMMENT = "splatlab-method"
CORE_PROPS = {"x", "y", "z", "nx", "ny", "nz", "opacity"} | {f"f_dc_{i}" for i in range(3)} \
    | {f"scale_{i}" for i in range(3)} | {f"rot_{i}" for i in range(4)}


def _col(el, name: str) -> np.ndarray:
    return np.asarray(el.data[name], dtype=np.float32)


def read_ply(path, *, extras: bool = True) -> Gaussians:
    """Read a plain or PlayCanvas-compressed `.ply` (decided by the presence of a `chunk` element)."""
    header, _ = read_header(path)
    if header.element("chunk") is not None:
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
                        _col(el, "opacity"), sh0, shN, ex, method_from_comments(path, header.comments) if extras else None)
    check_finite(path, scene)
    return scene


def method_from_comments(path, comments: list[str]) -> MethodSpec | None:
    """The `splatlab-method` header comment, if any (SplatFormatError when it is malformed)."""
    for line in comments:
        key, _, text = line.partition(" ")
        if key != METHOD_COMMENT:
            continue
        try:
            spec = json.loads(text)
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                    or not isinstance(spec.get("options", {}), dict):
                raise ValueError("expected {name, options}")
        except ValueError as exc:
            raise SplatFormatError(path, f"bad {METHOD_COMMENT} header comment: {' '.join(str(exc).split())}") from None
        return MethodSpec.from_dict(spec)
    return None


def method_comments(method: MethodSpec | None) -> list[str]:
    if method is None:
        return []
    return [f"{METHOD_COMMENT} {json.dumps(method.to_dict(), sort_keys=True, separators=(',', ':'))}"]


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
    comments = method_comments(scene.method) if extras else []
    with atomic_write(path) as fh:
        PlyData([el], text=False, byte_order="<", comments=comments).write(fh)
