"""PlayCanvas / SuperSplat compressed `.ply`.

`element chunk ceil(N/256)` of 18 float32 bounds (12 in older files, colour then absolute),
`element vertex N` of 4 packed uint32, optional `element sh N` of uchar `f_rest_*`.
Splats are Morton-ordered so 256 neighbours share a chunk's bounds.
"""
from __future__ import annotations

import math

import numpy as np
from plyfile import PlyData, PlyElement

from splatlab.gaussians import Gaussians, num_sh_bases, sh_degree_from_bases

from ._common import (SH_C0, SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite, check_writable,
                      check_order, logit, morton_order, normalize_quats, quantize_unorm, sigmoid)
from ._plyheader import PlyHeader, read_header, read_plydata

CHUNK = 256
SCALE_CLAMP = 20.0
SH_RANGE = 4.0  # f_rest stored in [-4, 4] as 8 bits
CHUNK_PROPS = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
               "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z",
               "min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
VERTEX_PROPS = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]
SQRT2 = math.sqrt(2.0)


# ---------------------------------------------------------------------------------------------
# packing helpers (also used by the tests to derive bounds)


def _chunk_bounds(values: np.ndarray, n_chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-chunk min/max of (N, C) values; the last chunk is padded with its final row."""
    n, c = values.shape
    pad = n_chunks * CHUNK - n
    v = np.concatenate([values, np.repeat(values[-1:], pad, axis=0)]) if pad else values
    v = v.reshape(n_chunks, CHUNK, c)
    return v.min(1).astype(np.float32), v.max(1).astype(np.float32)


def _normalise(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(v - lo) / (hi - lo) per splat with its chunk's bounds; ranges < 1e-5 give 0."""
    chunk_of = np.arange(values.shape[0]) // CHUNK
    lo64 = lo[chunk_of].astype(np.float64)
    rng = hi[chunk_of].astype(np.float64) - lo64
    out = np.zeros(values.shape, dtype=np.float64)
    ok = rng >= 1e-5
    out[ok] = (values.astype(np.float64)[ok] - lo64[ok]) / rng[ok]
    return out


def _pack_11_10_11(u: np.ndarray) -> np.ndarray:
    x = quantize_unorm(u[:, 0], 11)
    y = quantize_unorm(u[:, 1], 10)
    z = quantize_unorm(u[:, 2], 11)
    return (x << np.uint32(21)) | (y << np.uint32(11)) | z


def _unpack_11_10_11(p: np.ndarray) -> np.ndarray:
    p = p.astype(np.uint32)
    return np.stack([((p >> 21) & 0x7FF) / 2047.0, ((p >> 11) & 0x3FF) / 1023.0, (p & 0x7FF) / 2047.0], axis=1)


def pack_rotation(q: np.ndarray) -> np.ndarray:
    q = normalize_quats(q)
    i = np.argmax(np.abs(q), axis=1)
    rows = np.arange(q.shape[0])
    q = q * np.where(q[rows, i] < 0, -1.0, 1.0)[:, None]
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[i]
    packed = i.astype(np.uint32) << np.uint32(30)
    for slot, shift in enumerate((20, 10, 0)):
        c = q[rows, others[:, slot]]
        packed |= quantize_unorm(c * (SQRT2 / 2) + 0.5, 10) << np.uint32(shift)
    return packed


def unpack_rotation(p: np.ndarray) -> np.ndarray:
    p = p.astype(np.uint32)
    i = (p >> 30).astype(np.int64)
    comps = [(((p >> s) & 0x3FF) / 1023.0 - 0.5) * SQRT2 for s in (20, 10, 0)]
    abc = np.stack(comps, axis=1)
    largest = np.sqrt(np.maximum(0.0, 1.0 - (abc ** 2).sum(1)))
    q = np.zeros((p.shape[0], 4))
    rows = np.arange(p.shape[0])
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[i]
    q[rows, i] = largest
    for slot in range(3):
        q[rows, others[:, slot]] = abc[:, slot]
    return q


def sh_to_bytes(v: np.ndarray) -> np.ndarray:
    return np.clip(np.trunc((np.asarray(v, np.float64) / (2 * SH_RANGE) + 0.5) * 256), 0, 255).astype(np.uint8)


def sh_from_bytes(b: np.ndarray) -> np.ndarray:
    """Bucket centres, with 0 and 255 mapping to the range ends (as PlayCanvas decodes)."""
    b = b.astype(np.float64)
    nrm = np.where(b == 0, 0.0, np.where(b == 255, 1.0, (b + 0.5) / 256.0))
    return (nrm - 0.5) * (2 * SH_RANGE)


# ---------------------------------------------------------------------------------------------


def write_compressed_ply(path, gaussians: Gaussians | SceneArrays, *, order=None) -> None:
    """Write a PlayCanvas compressed `.ply`; `order` (a permutation) replaces the Morton sort."""
    scene = as_arrays(gaussians)
    n = len(scene)
    check_writable(path, scene, "compressed PLY")
    order = morton_order(scene.means) if order is None else check_order(path, order, n)
    s = scene.take(order)
    n_chunks = -(-n // CHUNK)

    pmin, pmax = _chunk_bounds(s.means, n_chunks)
    log_s = np.clip(s.scales, -SCALE_CLAMP, SCALE_CLAMP)
    smin, smax = _chunk_bounds(log_s, n_chunks)
    rgb = 0.5 + SH_C0 * s.sh0.astype(np.float64)
    cmin, cmax = _chunk_bounds(rgb, n_chunks)

    packed_pos = _pack_11_10_11(_normalise(s.means, pmin, pmax))
    packed_scale = _pack_11_10_11(_normalise(log_s, smin, smax))
    cn = _normalise(rgb, cmin, cmax)
    alpha = quantize_unorm(sigmoid(s.opacities), 8)
    packed_color = ((quantize_unorm(cn[:, 0], 8) << np.uint32(24)) | (quantize_unorm(cn[:, 1], 8) << np.uint32(16))
                    | (quantize_unorm(cn[:, 2], 8) << np.uint32(8)) | alpha)
    packed_rot = pack_rotation(s.quats)

    chunk = np.empty(n_chunks, dtype=[(p, "<f4") for p in CHUNK_PROPS])
    for i, ax in enumerate("xyz"):
        chunk[f"min_{ax}"], chunk[f"max_{ax}"] = pmin[:, i], pmax[:, i]
        chunk[f"min_scale_{ax}"], chunk[f"max_scale_{ax}"] = smin[:, i], smax[:, i]
    for i, ch in enumerate("rgb"):
        chunk[f"min_{ch}"], chunk[f"max_{ch}"] = cmin[:, i], cmax[:, i]
    vert = np.empty(n, dtype=[(p, "<u4") for p in VERTEX_PROPS])
    vert["packed_position"], vert["packed_rotation"] = packed_pos, packed_rot
    vert["packed_scale"], vert["packed_color"] = packed_scale, packed_color
    elements = [PlyElement.describe(chunk, "chunk"), PlyElement.describe(vert, "vertex")]
    k = s.shN.shape[1]
    # Trailing SH bands that are exactly zero (band 3 after fewer than 3 x sh_degree_interval
    # training steps) are left out: 8 bits over [-4, 4] have no code for 0 (bucket centres are
    # +-1/64), so each zero would decode as +1/64, a colour bias on every splat (garden: -0.89 dB).
    deg = sh_degree_from_bases(k + 1) if k else 0
    while deg > 0 and not np.any(s.shN[:, num_sh_bases(deg - 1) - 1:num_sh_bases(deg) - 1]):
        deg -= 1
    k = num_sh_bases(deg) - 1
    if k:
        rest = sh_to_bytes(s.shN[:, :k].transpose(0, 2, 1).reshape(n, 3 * k))
        sh = np.empty(n, dtype=[(f"f_rest_{i}", "u1") for i in range(3 * k)])
        for i in range(3 * k):
            sh[f"f_rest_{i}"] = rest[:, i]
        elements.append(PlyElement.describe(sh, "sh"))
    with atomic_write(path) as fh:
        PlyData(elements, text=False, byte_order="<", comments=["Generated by splatlab"]).write(fh)


def read_compressed_ply(path, *, header: PlyHeader | None = None) -> Gaussians:
    return read_compressed_arrays(path, header=header).to_gaussians()


def read_compressed_arrays(path, *, header: PlyHeader | None = None) -> SceneArrays:
    if header is None:
        header, _ = read_header(path)
    cinfo, vinfo, shinfo = header.element("chunk"), header.element("vertex"), header.element("sh")
    if cinfo is None or vinfo is None:
        raise SplatFormatError(path, "not a compressed PLY (needs 'chunk' and 'vertex' elements)")
    cnames = cinfo.prop_names()
    if cnames[:12] != CHUNK_PROPS[:12]:
        raise SplatFormatError(path, "compressed PLY chunk element lacks min_x..max_scale_z")
    has_colour_range = all(p in cnames for p in CHUNK_PROPS[12:])
    missing = [p for p in VERTEX_PROPS if p not in vinfo.prop_names()]
    if missing:
        raise SplatFormatError(path, "compressed PLY vertex element lacks " + ", ".join(missing))
    n = vinfo.count
    if n == 0:
        raise SplatFormatError(path, "PLY holds no splats (element vertex 0)")
    if cinfo.count < -(-n // CHUNK):
        raise SplatFormatError(path, f"compressed PLY has {cinfo.count} chunks but {n} splats need {-(-n // CHUNK)}")
    k = 0
    if shinfo is not None:
        rest_names = [p for p in shinfo.prop_names() if p.startswith("f_rest_")]
        if shinfo.count != n or len(rest_names) % 3:
            raise SplatFormatError(path, f"compressed PLY sh element has {shinfo.count} rows x {len(rest_names)} "
                                         f"coefficients, expected {n} rows x a multiple of 3")
        k = len(rest_names) // 3
        try:
            sh_degree_from_bases(k + 1)
        except ValueError:
            raise SplatFormatError(path, f"{len(rest_names)} f_rest_* properties is not a full SH band set") from None
    ply = read_plydata(path)
    c = ply["chunk"].data
    v = ply["vertex"].data
    cf = lambda name: np.asarray(c[name], np.float64)  # noqa: E731
    chunk_of = np.arange(n) // CHUNK
    lerp = lambda lo, hi, t: lo[chunk_of] + (hi[chunk_of] - lo[chunk_of]) * t  # noqa: E731

    def bounds(prefix: str, axes: str) -> tuple[np.ndarray, np.ndarray]:
        lo = np.stack([cf(f"min_{prefix}{a}") for a in axes], axis=1)
        hi = np.stack([cf(f"max_{prefix}{a}") for a in axes], axis=1)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise SplatFormatError(path, f"compressed PLY chunk bounds contain NaN or inf ({prefix or 'position'})")
        return lo, hi

    plo, phi = bounds("", "xyz")
    means = lerp(plo, phi, _unpack_11_10_11(np.asarray(v["packed_position"])))
    slo, shi = bounds("scale_", "xyz")
    scales = lerp(slo, shi, _unpack_11_10_11(np.asarray(v["packed_scale"])))
    pc = np.asarray(v["packed_color"]).astype(np.uint32)
    cu = np.stack([((pc >> s) & 0xFF) / 255.0 for s in (24, 16, 8)], axis=1)
    if has_colour_range:
        clo, chi = bounds("", "rgb")
        rgb = lerp(clo, chi, cu)
    else:
        rgb = cu
    sh0 = (rgb - 0.5) / SH_C0
    opac = logit((pc & 0xFF) / 255.0)
    quats = unpack_rotation(np.asarray(v["packed_rotation"]))
    shN = np.zeros((n, k, 3), np.float32)
    if k:
        sh = ply["sh"].data
        rest = np.stack([np.asarray(sh[f"f_rest_{i}"]) for i in range(3 * k)], axis=1)
        shN = sh_from_bytes(rest).reshape(n, 3, k).transpose(0, 2, 1)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    scene = SceneArrays(f32(means), f32(quats), f32(scales), f32(opac), f32(sh0), f32(shN))
    check_finite(path, scene)
    return scene
