#!/usr/bin/env python
"""Generate splatlab's multi-view object dataset (RGBA + depth + cameras per object).

    python scripts/make_objects.py --count 400                 # into /work/data/objects
    python scripts/make_objects.py --count 3000                # same command later: continues
    nice -n 15 python scripts/make_objects.py --count 400 &    # background, resumable

The format (index.json + objects/<id>.npz) is documented in splatlab/data/objects.py and read
by ``splatlab.data.objects.ObjectDataset``.  Objects are procedural compositions, pybullet's random
shapes with procedural textures, and the few real textured meshes in pybullet_data (split "ood").
Everything depends only on ``--seed`` and the object id: the same id always gives the same arrays,
whatever ``--count`` is and whether the run was interrupted.

Renderer: the one scripts/make_scenes.py uses (pyrender, EGL offscreen on Mesa llvmpipe), at 2x
resolution with 4x MSAA, box-filtered to the output size.  Each object is written to a temporary
file and renamed into place, and index.json is rewritten atomically after every object, so an
interrupted run leaves only finished objects and resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Must be set before pyrender / PyOpenGL are imported.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Mesa llvmpipe: one rasteriser thread (the machine is shared); output does not depend on it.
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import object_assets as A  # noqa: E402
from scene_scenes import look_at_gl  # noqa: E402

DEFAULT_OUT = Path("/work/data/objects")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class RenderConfig:
    """Everything that changes the pixels; stored in meta.json and checked on resume."""

    res: int = 128
    supersample: int = 2
    radius: float = 3.0  # camera distance from the origin; the object is inside the unit sphere
    fov_deg: float = 40.0  # fov_x = fov_y; asin(1/3) = 19.5° < 20°, so the unit sphere always fits
    n_low: int = 24
    n_high: int = 8
    low_deg: tuple = (-10.0, 30.0)
    high_deg: tuple = (50.0, 85.0)

    def intrinsics(self) -> np.ndarray:
        f = 0.5 * self.res / np.tan(np.radians(self.fov_deg) / 2)
        return np.array([[f, 0, self.res / 2], [0, f, self.res / 2], [0, 0, 1]], np.float32)


# ---------------------------------------------------------------------------
# Ids, splits, plan
# ---------------------------------------------------------------------------

SOURCE_CODE = {"real": 0, "proc": 1, "urdf": 2}


def split_of(object_id: str) -> str:
    """Deterministic from the id: ~5% test, ~5% val; real meshes are the out-of-distribution set."""
    if object_id.startswith("real-"):
        return "ood"
    bucket = int(hashlib.sha1(object_id.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < 5 else "val" if bucket < 10 else "train"


def plan(count: int) -> list[str]:
    """The first `count` ids in generation order: real meshes, then procedural and pybullet shapes
    alternating (so any prefix is a mix), then procedural only once the 1000 shapes are used."""
    ids = [f"real-{n}" for n in A.REAL_MESHES]
    k = 0
    while len(ids) < count:
        ids.append(f"proc-{k:06d}")
        if k < A.N_URDF:
            ids.append(f"urdf-{k:03d}")
        k += 1
    return ids[:count]


def object_rng(seed: int, object_id: str, stream: int) -> np.random.Generator:
    source, name = object_id.split("-", 1)
    key = int(name) if name.isdigit() else int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)
    return np.random.default_rng([seed, SOURCE_CODE[source], key, stream])


# ---------------------------------------------------------------------------
# Geometry -> pyrender meshes, normalised into the unit sphere
# ---------------------------------------------------------------------------


def _normalise(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the bounding box and the scale that puts every point inside the unit sphere."""
    center = 0.5 * (points.min(0) + points.max(0))
    scale = 1.0 / max(np.linalg.norm(points - center, axis=1).max(), 1e-9)
    return center, scale


def build_meshes(object_id: str, seed: int):
    """(list of pyrender.Mesh, source) for an id; geometry centred and scaled into the unit sphere."""
    import pyrender

    source, name = object_id.split("-", 1)
    rng = object_rng(seed, object_id, 0)
    if source == "real":
        tms = A.real_object(name)
        center, scale = _normalise(np.concatenate([t.vertices for t in tms]))
        out = []
        for t in tms:
            t.vertices = (np.asarray(t.vertices) - center) * scale
            out.append(pyrender.Mesh.from_trimesh(t, smooth=name not in ("teddy", "jenga", "domino")))
        return out, source
    if source == "proc":
        parts = A.proc_object(rng)
    elif source == "urdf":
        parts = A.urdf_object(int(name), rng)
    else:
        raise ValueError(f"unknown object source {source!r} in id {object_id!r}")
    center, scale = _normalise(np.concatenate([p.positions for p in parts]))
    prims, textures = [], {}
    for part in parts:
        m = part.material
        tex = None
        if m.texture is not None:
            tex = textures.get(id(m.texture))
            if tex is None:
                tex = textures[id(m.texture)] = pyrender.Texture(source=np.ascontiguousarray(m.texture), source_channels="RGB")
        mat = pyrender.MetallicRoughnessMaterial(
            baseColorFactor=[*m.color, 1.0], baseColorTexture=tex, metallicFactor=m.metallic,
            roughnessFactor=m.roughness, doubleSided=True,
        )
        prims.append(pyrender.Primitive(
            positions=((part.positions - center) * scale).astype(np.float32), normals=part.normals.astype(np.float32),
            texcoord_0=part.uvs.astype(np.float32), indices=part.faces.astype(np.uint32), material=mat,
        ))
    return [pyrender.Mesh(prims)], source


# ---------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def view_angles(cfg: RenderConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(elevation_deg, azimuth_deg): n_low views in the low band (elevation a sinusoid of azimuth,
    as SplatFormer's input orbits, with jitter), then n_high views in the high band."""
    lo0, lo1 = cfg.low_deg
    n = cfg.n_low
    k = np.arange(n)
    az_lo = rng.uniform(0, 360) + 360.0 * (k + rng.uniform(-0.3, 0.3, n)) / n
    mid, amp = 0.5 * (lo0 + lo1), 0.5 * (lo1 - lo0)
    el_lo = mid + amp * np.sin(2 * np.radians(az_lo) + rng.uniform(0, 2 * np.pi)) + rng.uniform(-3, 3, n)
    el_lo = np.clip(el_lo, lo0, lo1)
    hi0, hi1 = cfg.high_deg
    m = cfg.n_high
    j = np.arange(m)
    az_hi = rng.uniform(0, 360) + 360.0 * (j + rng.uniform(-0.3, 0.3, m)) / m
    el_hi = hi0 + (hi1 - hi0) * (rng.permutation(m) + rng.uniform(0, 1, m)) / m
    el = np.concatenate([el_lo, el_hi])
    az = np.concatenate([az_lo, az_hi]) % 360.0
    return el.astype(np.float32), az.astype(np.float32)


def camera_to_world_cv(cfg: RenderConfig, el_deg: float, az_deg: float) -> np.ndarray:
    el, az = np.radians(el_deg), np.radians(az_deg)
    eye = cfg.radius * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at_gl(eye, np.zeros(3)) @ GL_TO_CV


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

# A fixed world-space studio rig: key, fill, rim and a weak light from below (low views see the
# underside).  (position the light shines from, intensity)
LIGHTS = (((2.0, -2.5, 3.5), 2.6), ((-3.0, 1.5, 1.0), 1.3), ((0.5, 3.0, 2.0), 1.0), ((0.0, 0.0, -3.0), 0.6))
AMBIENT = 0.3


class ObjectRenderer:
    """One offscreen EGL context reused for every object."""

    def __init__(self, cfg: RenderConfig):
        import pyrender

        self.pyrender = pyrender
        self.cfg = cfg
        size = cfg.res * cfg.supersample
        self.renderer = pyrender.OffscreenRenderer(size, size)

    def render_object(self, meshes, c2w_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rgba uint8 (V,R,R,4) straight alpha, depth float32 (V,R,R) camera z (0 = background)."""
        pr = self.pyrender
        cfg = self.cfg
        scene = pr.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[AMBIENT] * 3)
        for mesh in meshes:
            scene.add(mesh)
        for pos, intensity in LIGHTS:
            scene.add(pr.DirectionalLight(color=np.ones(3), intensity=intensity), pose=look_at_gl(pos, (0.0, 0.0, 0.0)))
        cam = pr.PerspectiveCamera(yfov=np.radians(cfg.fov_deg), aspectRatio=1.0, znear=0.5, zfar=10.0)
        node = scene.add(cam, pose=np.eye(4))
        rgba, depth = [], []
        for c2w in c2w_cv:
            scene.set_pose(node, c2w @ GL_TO_CV)
            color, d = self.renderer.render(scene, flags=pr.RenderFlags.RGBA)
            a, z = downsample(color, d, cfg.res, cfg.supersample)
            rgba.append(a)
            depth.append(z)
        return np.stack(rgba), np.stack(depth)

    def close(self):
        self.renderer.delete()


def downsample(color: np.ndarray, depth: np.ndarray, res: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-filter a (res*k)² MSAA render to res².  Colour: premultiplied average, then un-premultiplied.
    Depth: mean over the covered sub-pixels.  The mask is made to agree with depth > 0 exactly:
    pixels with no covered depth sample get alpha 0, covered ones at least 1/255."""
    c = color.astype(np.float64).reshape(res, k, res, k, 4).mean(axis=(1, 3)) / 255.0
    d = depth.astype(np.float64).reshape(res, k, res, k)
    covered = (d > 0).sum(axis=(1, 3))
    z = np.where(covered > 0, d.sum(axis=(1, 3)) / np.maximum(covered, 1), 0.0)
    a = c[..., 3]
    rgb = np.clip(c[..., :3] / np.maximum(a, 1e-6)[..., None], 0.0, 1.0)
    a8 = np.clip(np.round(a * 255.0), 0, 255)
    a8 = np.where(covered > 0, np.maximum(a8, 1), 0)
    rgb8 = np.where((a8 > 0)[..., None], np.round(rgb * 255.0), 0)
    return np.concatenate([rgb8, a8[..., None]], -1).astype(np.uint8), z.astype(np.float32)


def make_object(renderer: ObjectRenderer, object_id: str, seed: int) -> tuple[dict, str]:
    """All arrays of one object (the npz contents) and its source."""
    cfg = renderer.cfg
    meshes, source = build_meshes(object_id, seed)
    el, az = view_angles(cfg, object_rng(seed, object_id, 1))
    c2w = np.stack([camera_to_world_cv(cfg, e, a) for e, a in zip(el, az)])
    rgba, depth = renderer.render_object(meshes, c2w)
    empty = np.nonzero((rgba[..., 3] == 0).all(axis=(1, 2)))[0]
    if len(empty):
        raise ValueError(f"object {object_id}: views {empty.tolist()} are empty (broken source mesh?)")
    arrays = {
        "rgba": rgba,
        "depth": depth.astype(np.float16),
        "viewmats": np.linalg.inv(c2w).astype(np.float32),
        "Ks": np.repeat(cfg.intrinsics()[None], len(el), axis=0),
        "elevation_deg": el,
        "azimuth_deg": az,
    }
    return arrays, source


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_index(out: Path) -> list[dict]:
    p = out / "index.json"
    if not p.exists():
        return []
    try:
        entries = json.loads(p.read_text())
        assert isinstance(entries, list) and all("id" in e for e in entries)
    except (ValueError, AssertionError) as e:
        raise SystemExit(f"{p}: not a valid object index ({e or 'expected a list of entries'}); delete it to rebuild")
    return entries


def check_meta(out: Path, seed: int, cfg: RenderConfig) -> None:
    """Refuse to mix objects made with another seed or render configuration in one folder."""
    meta = {"format_version": FORMAT_VERSION, "seed": seed, "render": {k: v if not isinstance(v, tuple) else list(v)
                                                                        for k, v in cfg.__dict__.items()},
            "generator": "scripts/make_objects.py (pyrender EGL)", "format": "splatlab/data/objects.py"}
    p = out / "meta.json"
    if p.exists():
        old = json.loads(p.read_text())
        for key in ("format_version", "seed", "render"):
            if old.get(key) != meta[key]:
                raise SystemExit(f"{p}: {key} is {old.get(key)} but this run uses {meta[key]}; use another --out")
    else:
        atomic_write_bytes(p, (json.dumps(meta, indent=1) + "\n").encode())


def generate(out: Path, count: int, seed: int = 0, cfg: RenderConfig = RenderConfig(), ids: list[str] | None = None,
             progress: bool = True) -> dict:
    """Render the first `count` objects of the plan (or `ids`) into `out`, skipping finished ones.
    One writer per folder (an flock on out/.lock); readers need no lock."""
    import fcntl

    out = Path(out)
    (out / "objects").mkdir(parents=True, exist_ok=True)
    lock = open(out / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SystemExit(f"{out}: another make_objects.py is writing here (lock {out / '.lock'})") from None
    try:
        return _generate_locked(out, count, seed, cfg, ids, progress)
    finally:
        lock.close()


def _generate_locked(out: Path, count: int, seed: int, cfg: RenderConfig, ids: list[str] | None, progress: bool) -> dict:
    from tqdm import tqdm

    check_meta(out, seed, cfg)
    todo_ids = ids if ids is not None else plan(count)
    order = {oid: i for i, oid in enumerate(todo_ids)}
    done = {e["id"]: e for e in read_index(out) if (out / "objects" / f"{e['id']}.npz").exists()}
    todo = [oid for oid in todo_ids if oid not in done]
    renderer = ObjectRenderer(cfg) if todo else None
    times, skipped = [], []
    try:
        bar = tqdm(todo, desc="objects", unit="obj", disable=not progress, initial=len(todo_ids) - len(todo),
                   total=len(todo_ids), smoothing=0.05)
        for oid in bar:
            t0 = time.time()
            try:
                arrays, source = make_object(renderer, oid, seed)
            except ValueError as e:  # a broken source mesh: report it and go on with the others
                skipped.append(oid)
                bar.write(f"skipped: {e}")
                continue
            write_npz(out / "objects" / f"{oid}.npz", arrays)
            done[oid] = {"id": oid, "split": split_of(oid), "source": source, "n_views": int(len(arrays["rgba"]))}
            entries = sorted(done.values(), key=lambda e: (order.get(e["id"], len(order)), e["id"]))
            atomic_write_bytes(out / "index.json", (json.dumps(entries, indent=0) + "\n").encode())
            times.append(time.time() - t0)
            bar.set_postfix(s_per_obj=f"{np.mean(times[-20:]):.2f}")
    finally:
        if renderer is not None:
            renderer.close()
    return {"rendered": len(times), "total": len(done), "seconds": float(np.sum(times)),
            "s_per_object": float(np.mean(times)) if times else float("nan"), "skipped": skipped}


def main(argv=None):
    # SIGTERM -> SystemExit so temp files are removed and the index stays consistent
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="dataset root (default %(default)s)")
    ap.add_argument("--count", type=int, default=400, help="objects in the dataset (the first N of the plan)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", nargs="+", help="render exactly these ids instead of the plan (e.g. proc-000003 urdf-007)")
    args = ap.parse_args(argv)
    stats = generate(args.out, args.count, args.seed, ids=args.ids)
    size = sum(p.stat().st_size for p in (args.out / "objects").glob("*.npz"))
    print(f"rendered {stats['rendered']} objects in {stats['seconds']:.0f} s ({stats['s_per_object']:.2f} s/object); "
          f"{stats['total']} in {args.out}, {size / 1e6:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
