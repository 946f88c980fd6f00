"""antimatter15 `.splat`: 32 bytes per splat, no header, no SH.

3 x f32 position, 3 x f32 exp(scale), RGBA u8 (255*(0.5 + C0*f_dc), 255*sigmoid(opacity)),
4 x u8 quaternion w first (q*128 + 128).  Written sorted by -exp(sum log-scale)*sigmoid(opacity)
unless an explicit order is given.
"""
from __future__ import annotations

import numpy as np

from splatlab.gaussians import Gaussians

from ._common import (SH_C0, SceneArrays, SplatFormatError, as_arrays, atomic_write, check_finite, check_writable,
                      check_order, logit, normalize_quats, read_bytes, sigmoid)

RECORD = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert RECORD.itemsize == 32


def importance_order(scene: SceneArrays) -> np.ndarray:
    """Largest, most opaque first: argsort of -exp(sum log-scale) * sigmoid(opacity)."""
    key = -np.exp(scene.scales.astype(np.float64).sum(1)) * sigmoid(scene.opacities)
    return np.argsort(key, kind="stable")


def write_splat(path, gaussians: Gaussians | SceneArrays, *, order=None, sort: bool = True) -> None:
    scene = as_arrays(gaussians)
    n = len(scene)
    check_writable(path, scene)
    if order is not None:
        scene = scene.take(check_order(path, order, n))
    elif sort:
        scene = scene.take(importance_order(scene))
    rec = np.zeros(n, RECORD)
    rec["pos"] = scene.means
    rec["scale"] = np.exp(scene.scales.astype(np.float64))
    rgb = np.clip(np.round((0.5 + SH_C0 * scene.sh0.astype(np.float64)) * 255.0), 0, 255)
    a = np.clip(np.round(sigmoid(scene.opacities) * 255.0), 0, 255)
    rec["rgba"] = np.concatenate([rgb, a[:, None]], axis=1).astype(np.uint8)
    rec["rot"] = np.clip(np.round(normalize_quats(scene.quats) * 128.0 + 128.0), 0, 255).astype(np.uint8)
    with atomic_write(path) as fh:
        fh.write(rec.tobytes())


def read_splat(path) -> Gaussians:
    return read_splat_arrays(path).to_gaussians()


def read_splat_arrays(path, data: bytes | None = None) -> SceneArrays:
    data = read_bytes(path) if data is None else data
    if len(data) % RECORD.itemsize:
        raise SplatFormatError(path, f"truncated or not a .splat file: {len(data)} bytes is not a multiple of 32 "
                                     f"({len(data) // 32} whole splats + {len(data) % 32} bytes)")
    rec = np.frombuffer(data, RECORD)
    n = rec.shape[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        means = rec["pos"].astype(np.float32)
        sc = rec["scale"].astype(np.float64)
        if np.isfinite(sc).all() and (sc <= 0).any():
            bad = int(np.flatnonzero((sc <= 0).any(1))[0])
            raise SplatFormatError(path, f"non-positive scale at splat {bad} (not a .splat file?)")
        log_s = np.log(sc)
    q = (rec["rot"].astype(np.float64) - 128.0) / 128.0
    rgba = rec["rgba"].astype(np.float64) / 255.0
    sh0 = (rgba[:, :3] - 0.5) / SH_C0
    f32 = lambda x: np.ascontiguousarray(x, dtype=np.float32)  # noqa: E731
    scene = SceneArrays(f32(means), f32(q), f32(log_s), f32(logit(rgba[:, 3])), f32(sh0), np.zeros((n, 0, 3), np.float32))
    check_finite(path, scene)
    return scene
