"""Small procedural objects (ellipsoids, boxes, cylinders with stripe/checker/solid textures and
baked Lambert shading), drawn as dense surface Gaussians by splatlab's rasterizer, written in the
shared object-dataset format (documented in splatlab/data/objects.py: index.json + objects/<id>.npz with
rgba, depth, viewmats, Ks, elevation_deg, azimuth_deg).

Why: a stand-in for `scripts/make_objects.py` (branch `objects`) so Triplane-Gaussian can be
developed and trained before the shared dataset exists. Deterministic from (id, seed); splits by
sha1(id) exactly as the shared format (<5 test, 5..9 val, else train).

    python scripts/make_blob_objects.py --out .cache/blob_objects --count 300 [--views 16]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from splatlab.cameras import intrinsics_from_fov, look_at
from splatlab.render import rasterize

RES = 128
FOV_DEG = 40.0
RADIUS = 3.0
LIGHT = np.array([0.4, -0.5, 0.75]) / np.linalg.norm([0.4, -0.5, 0.75])


def split_of(object_id: str) -> str:
    bucket = int(hashlib.sha1(object_id.encode()).hexdigest(), 16) % 100
    return "test" if bucket < 5 else "val" if bucket < 10 else "train"


def _surface(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-sized primitive surface samples: points, normals and a (u, v) texture coordinate."""
    if kind == "ellipsoid":
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        uv = np.stack([np.arctan2(d[:, 1], d[:, 0]) / math.pi, d[:, 2]], 1)
        return d, d.copy(), uv
    if kind == "box":
        face = rng.integers(0, 6, n)
        p = rng.uniform(-1, 1, (n, 3))
        axis, sign = face // 2, np.where(face % 2 == 0, 1.0, -1.0)
        p[np.arange(n), axis] = sign
        nrm = np.zeros((n, 3))
        nrm[np.arange(n), axis] = sign
        uv = np.stack([p[:, (axis + 1) % 3][np.arange(n)] if False else p[np.arange(n), (axis + 1) % 3],
                       p[np.arange(n), (axis + 2) % 3]], 1)
        return p, nrm, uv
    # cylinder along z: side 2/3 of the samples, caps the rest
    side = rng.random(n) < 0.67
    t = rng.uniform(0, 2 * math.pi, n)
    r = np.sqrt(rng.random(n))
    z = rng.uniform(-1, 1, n)
    p = np.where(side[:, None], np.stack([np.cos(t), np.sin(t), z], 1),
                 np.stack([r * np.cos(t), r * np.sin(t), np.sign(z)], 1))
    nrm = np.where(side[:, None], np.stack([np.cos(t), np.sin(t), 0 * z], 1),
                   np.stack([0 * t, 0 * t, np.sign(z)], 1))
    uv = np.stack([t / math.pi - 1, z], 1)
    return p, nrm, uv


def _rotation(rng: np.random.Generator, tilt: float) -> np.ndarray:
    yaw, a, b = rng.uniform(0, 2 * math.pi), rng.uniform(-tilt, tilt), rng.uniform(-tilt, tilt)
    cz, sz, cx, sx, cy, sy = math.cos(yaw), math.sin(yaw), math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


def make_object(object_id: str, seed: int, n_points: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Points (N,3) in the unit sphere and their shaded colours (N,3) for one object."""
    rng = np.random.default_rng(int(hashlib.sha1(f"{object_id}:{seed}".encode()).hexdigest()[:8], 16))
    parts = int(rng.integers(1, 4))
    pts, cols = [], []
    base = rng.uniform(-0.4, 0.4, 3)
    for i in range(parts):
        kind = str(rng.choice(["ellipsoid", "box", "cylinder"]))
        size = rng.uniform(0.25, 0.7, 3) * (1.0 if i == 0 else 0.7)
        rot = _rotation(rng, 0.5)
        centre = (base * 0 if i == 0 else rng.uniform(-0.5, 0.5, 3))
        area = 2 * (size[0] * size[1] + size[1] * size[2] + size[0] * size[2])
        p, nrm, uv = _surface(kind, max(200, int(n_points * area / (3 * parts * 0.25))), rng)
        p = (p * size) @ rot.T + centre
        nrm = (nrm / size) @ rot.T
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
        c1, c2 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
        pattern = rng.choice(["solid", "stripes", "checker"])
        freq = rng.uniform(2, 6)
        if pattern == "solid":
            w = np.zeros(len(p))
        elif pattern == "stripes":
            w = (np.sin(uv[:, 1] * freq * math.pi) > 0).astype(float)
        else:
            w = ((np.floor(uv[:, 0] * freq) + np.floor(uv[:, 1] * freq)) % 2).astype(float)
        albedo = c1 * (1 - w[:, None]) + c2 * w[:, None]
        shade = 0.45 + 0.55 * np.clip(nrm @ LIGHT, 0, 1)
        pts.append(p)
        cols.append(np.clip(albedo * shade[:, None], 0, 1))
    p, c = np.concatenate(pts), np.concatenate(cols)
    p = p - 0.5 * (p.min(0) + p.max(0))
    p = p * (0.95 / np.linalg.norm(p, axis=1).max())
    return p.astype(np.float32), c.astype(np.float32)


def cameras(object_id: str, seed: int, views: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low views (elevation -10..30) then 1/4 high views (50..85), as the shared format orders them."""
    rng = np.random.default_rng(int(hashlib.sha1(f"cams:{object_id}:{seed}".encode()).hexdigest()[:8], 16))
    n_high = views // 4
    n_low = views - n_high
    az0 = rng.uniform(0, 360)
    az_low = (az0 + np.arange(n_low) * 360.0 / n_low) % 360
    el_low = 10 + 20 * np.sin(np.deg2rad(az_low) * 2) + rng.uniform(-5, 5, n_low)
    az_high = (az0 + 17 + np.arange(n_high) * 360.0 / max(n_high, 1) + rng.uniform(-10, 10, n_high)) % 360
    el_high = rng.uniform(50, 85, n_high)
    el, az = np.concatenate([np.clip(el_low, -10, 30), el_high]), np.concatenate([az_low, az_high])
    mats = []
    for e, a in zip(np.deg2rad(el), np.deg2rad(az)):
        eye = torch.tensor([RADIUS * math.cos(e) * math.cos(a), RADIUS * math.cos(e) * math.sin(a), RADIUS * math.sin(e)])
        mats.append(look_at(eye, torch.zeros(3)).numpy())
    return np.stack(mats).astype(np.float32), el.astype(np.float32), az.astype(np.float32)


@torch.no_grad()
def render_object(points: np.ndarray, colors: np.ndarray, viewmats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(points)
    means = torch.from_numpy(points)
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    scales = torch.full((n, 3), 0.03)
    opac = torch.full((n,), 0.95)
    vm = torch.from_numpy(viewmats)
    Ks = intrinsics_from_fov(math.radians(FOV_DEG), RES, RES)[None].expand(len(vm), 3, 3).contiguous()
    img, alpha, _ = rasterize(means, quats, scales, opac, torch.from_numpy(colors), vm, Ks, RES, RES,
                              render_mode="RGB+ED", backend="cpu")
    a = alpha[..., 0].clamp(0, 1)
    a = torch.where(a < 1.5 / 255, torch.zeros_like(a), a)
    rgb = (img[..., :3] / a[..., None].clamp_min(1e-6)).clamp(0, 1)
    depth = torch.where(a > 0, img[..., 3], torch.zeros_like(a))
    rgba = torch.cat([rgb, a[..., None]], -1)
    rgba8 = (rgba.numpy() * 255 + 0.5).astype(np.uint8)
    depth = np.where(rgba8[..., 3] > 0, depth.numpy(), 0).astype(np.float16)
    rgba8[..., :3] = np.where(rgba8[..., 3:] > 0, rgba8[..., :3], 0)
    return rgba8, depth


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=".cache/blob_objects")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--views", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = Path(args.out)
    (out / "objects").mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    done = {e["id"] for e in index}
    K = intrinsics_from_fov(math.radians(FOV_DEG), RES, RES).numpy().astype(np.float32)
    for i in tqdm(range(args.count), desc="blob objects", file=sys.stdout):
        oid = f"blob-{i:06d}"
        if oid in done:
            continue
        pts, cols = make_object(oid, args.seed)
        vm, el, az = cameras(oid, args.seed, args.views)
        rgba, depth = render_object(pts, cols, vm)
        npz = out / "objects" / f"{oid}.npz"

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, rgba=rgba, depth=depth, viewmats=vm, Ks=np.repeat(K[None], len(vm), 0),
                                    elevation_deg=el, azimuth_deg=az)

        _atomic_write(npz, write)
        index.append({"id": oid, "split": split_of(oid), "source": "blob", "n_views": int(len(vm))})
        if i % 10 == 9 or i == args.count - 1:
            _atomic_write(index_path, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=1)))
    _atomic_write(index_path, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
