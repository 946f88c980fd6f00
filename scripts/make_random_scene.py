#!/usr/bin/env python
"""A random Blender-layout capture from a seed, for measuring how training generalises.

    python scripts/make_random_scene.py 1            # -> .cache/scenes/random_1
    python scripts/make_random_scene.py 9001 9002 --out-root /tmp/scenes

The scene is a pure function of the seed: a few random primitives (spheres, boxes, cylinders,
tori, vases) with random procedural materials, on a textured or plain floor, under an opaque
sky dome (most seeds) or cut out with alpha (object-only seeds); random lighting; a random
camera distribution (orbit radius, elevation band, evenly spread or random, look-at jitter).
60 training and 12 test views at 128x128, rendered with the same pyrender renderer as the
bundled scenes (scripts/make_scenes.py). No point cloud is written: that is the point: a new
user's capture with known poses and nothing else.

Each scene is written to a temporary folder and renamed into place (never half-written).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_scenes as M  # noqa: E402  (sets PYOPENGL_PLATFORM before pyrender loads)
import scene_scenes as S  # noqa: E402
from scene_assets import (Material, box, cylinder, ellipsoid, lathe, marble_texture, quad,  # noqa: E402
                          random_bumps, rotate, torus, translate, wood_texture)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = ROOT / ".cache" / "scenes"
RES = 128
N_TRAIN, N_TEST = 60, 12


def random_material(rng: np.random.Generator) -> Material:
    kind = rng.choice(["palette", "palette", "marble", "wood", "plain"])
    rough = float(rng.uniform(0.3, 0.9))
    if kind == "palette":
        return Material(S.random_palette_texture(rng, 256), roughness=rough)
    if kind == "marble":
        c1 = tuple(int(v) for v in rng.integers(120, 250, 3))
        c2 = tuple(int(v) for v in rng.integers(40, 200, 3))
        return Material(marble_texture(rng, 256, c1, c2), roughness=rough)
    if kind == "wood":
        return Material(wood_texture(rng, 256), roughness=rough)
    return Material(color=tuple(float(v) for v in rng.uniform(0.15, 0.95, 3)), roughness=rough,
                    metallic=float(rng.choice([0.0, 0.0, 0.8])))


def random_object(rng: np.random.Generator, x: float, y: float) -> list:
    """One random primitive standing on the floor at (x, y), about 0.3-1.2 units tall."""
    kind = rng.choice(["sphere", "box", "cylinder", "torus", "vase"])
    mat = random_material(rng)
    s = float(rng.uniform(0.25, 0.6))
    yaw = float(rng.uniform(0, 360))
    if kind == "sphere":
        r = (s, s * rng.uniform(0.7, 1.2), s * rng.uniform(0.6, 1.2))
        bumps = random_bumps(rng, 0.1, 8, (1.0, 3.0)) if rng.random() < 0.4 else None
        parts = [ellipsoid(r, mat, n=40, bumps=bumps).transformed(translate(0, 0, r[2]))]
    elif kind == "box":
        size = (s * 2, s * rng.uniform(1.0, 2.0), s * rng.uniform(1.0, 2.5))
        faces = {f: (mat if rng.random() < 0.6 else random_material(rng)) for f in ["+x", "-x", "+y", "-y", "+z", "-z"]}
        parts = box(size, faces, center=(0, 0, size[2] / 2))
    elif kind == "cylinder":
        parts = cylinder(s * 0.8, 0.0, s * rng.uniform(1.5, 3.0), mat, n=40, cap_material=random_material(rng))
    elif kind == "torus":
        R = s
        parts = [torus(R, R * rng.uniform(0.2, 0.4), mat, n=48, m=16).transformed(rotate((1, 0, 0), rng.uniform(0, 90)))
                 .transformed(translate(0, 0, R * 1.3))]
    else:
        h = s * 3
        ks = np.sort(rng.uniform(0.3, 1.0, 4))
        knots_t = np.array([0.0, 0.35, 0.75, 1.0])
        knots_r = s * np.array([ks[1], ks[3], ks[0], ks[2]])
        parts = [lathe(lambda t: (np.interp(t, knots_t, knots_r), h * t), mat, n=48, m=24)]
        parts.append(cylinder(knots_r[-1], h, h, mat, n=48)[2 - 1])  # lid closing the top
    return [p.transformed(rotate((0, 0, 1), yaw)).transformed(translate(x, y, 0.0)) for p in parts]


def build_random(rng: np.random.Generator) -> tuple[S.SceneSpec, dict]:
    """Scene and camera settings drawn from `rng` (see the module doc for what varies)."""
    alpha = rng.random() < 0.25  # object-only capture with an alpha channel
    parts = []
    n_obj = int(rng.integers(2, 6))
    placed = []
    while len(placed) < n_obj:
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 1.3)
        p = np.array([d * np.cos(a), d * np.sin(a)])
        if all(np.linalg.norm(p - q) > 0.7 for q in placed):
            placed.append(p)
    for x, y in placed:
        parts += random_object(rng, float(x), float(y))
    floor = "none" if alpha else rng.choice(["textured", "textured", "plain"])
    if floor == "textured":
        parts.append(quad((-6, -6, 0.0), (12, 0, 0), (0, 12, 0), Material(S.random_palette_texture(rng, 1024), roughness=0.9)))
        parts.append(quad((-200, -200, -0.01), (400, 0, 0), (0, 400, 0),
                          Material(S.random_palette_texture(rng, 512), roughness=0.95)))
    elif floor == "plain":
        parts.append(quad((-200, -200, -0.01), (400, 0, 0), (0, 400, 0),
                          Material(color=tuple(float(v) for v in rng.uniform(0.2, 0.8, 3)), roughness=0.95)))
    if not alpha:
        parts.append(S.dome(300.0, S.sky_panorama(rng, w=1024, h=512)))
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(35, 70)
    sun = 10 * np.array([np.cos(np.radians(el)) * np.cos(az), np.cos(np.radians(el)) * np.sin(az), np.sin(np.radians(el))])
    lights = [S.Light("directional", tuple(sun), (1.0, 0.97, 0.9), float(rng.uniform(2.5, 4.5)), shadows=not alpha)]
    spec = S.SceneSpec(parts, lights, scene_center=(0.0, 0.0, 0.4), ambient=float(rng.uniform(0.35, 0.7)),
                       znear=0.05, zfar=700.0)
    el_lo = float(rng.uniform(-10, 15) if alpha else rng.uniform(8, 20))
    cams = dict(kind="object" if alpha else "unbounded", alpha=alpha, floor=floor, objects=n_obj,
                fov_x=float(rng.uniform(0.6, 1.0)), radius=(float(rng.uniform(3.0, 4.0)), float(rng.uniform(4.2, 5.5))),
                el=(el_lo, float(rng.uniform(el_lo + 25, 75))), spread=str(rng.choice(["even", "random"])),
                jitter=float(rng.uniform(0.0, 0.25)))
    return spec, cams


def random_cameras(rng: np.random.Generator, cfg: dict, center) -> dict[str, list[np.ndarray]]:
    center = np.asarray(center, float)
    el0, el1 = cfg["el"]
    r0, r1 = cfg["radius"]
    if cfg["spread"] == "even":
        train = S.fibonacci_dirs(N_TRAIN, el0, el1, offset=rng.uniform(0, 2 * np.pi))
    else:
        train = S.sphere_dirs(rng, N_TRAIN, el0, el1)
    test = S.spiral_dirs(N_TEST, el0 + 3, el1 - 3, phase=rng.uniform(0, 2 * np.pi))
    out = {}
    for split, dirs in (("train", train), ("test", test)):
        poses = []
        for d in dirs:
            look = center + rng.normal(0, cfg["jitter"], 3) * (1, 1, 0.5)
            poses.append(S.look_at_gl(center + rng.uniform(r0, r1) * d, look))
        out[split] = poses
    return out


def make_random_scene(seed: int, out_root: Path = DEFAULT_ROOT, overwrite: bool = False) -> Path:
    """Render scene `seed` into `out_root/random_<seed>` (skipped when it exists, unless `overwrite`)."""
    dest = Path(out_root) / f"random_{seed}"
    if dest.exists() and not overwrite:
        return dest
    rng = np.random.default_rng(seed)
    spec, cfg = build_random(rng)
    cams = random_cameras(np.random.default_rng([seed, 1]), cfg, spec.scene_center)
    M.RES = RES  # the shared renderer reads its output size from this module constant
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        M.write_blender(tmp, dest.name, {**cfg, "seed": seed}, spec, cams, alpha=cfg["alpha"])
        for split in cams:
            path = tmp / f"transforms_{split}.json"
            meta = json.loads(path.read_text())
            meta["generator"] = f"scripts/make_random_scene.py {seed} (pyrender EGL)"
            meta["random_scene"] = {k: v for k, v in cfg.items() if k != "kind"}
            path.write_text(json.dumps(meta, indent=1) + "\n")
        old = dest.parent / f".{dest.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seeds", type=int, nargs="+", help="scene seeds")
    ap.add_argument("--out-root", type=Path, default=DEFAULT_ROOT, help="parent folder (default .cache/scenes)")
    ap.add_argument("--overwrite", action="store_true", help="re-render scenes that exist")
    args = ap.parse_args(argv)
    for seed in args.seeds:
        t0 = time.time()
        dest = make_random_scene(seed, args.out_root, args.overwrite)
        meta = json.loads((dest / "transforms_train.json").read_text()).get("random_scene", {})
        print(f"{dest}: {meta} ({time.time() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
