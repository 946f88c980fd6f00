#!/usr/bin/env python
"""Regenerate splatlab's bundled ground-truth scenes into scenes/.

    python scripts/make_scenes.py              # all scenes
    python scripts/make_scenes.py --only robot # one scene

Renderer: pyrender 0.1.45 (OpenGL rasteriser with PBR shading and shadow maps)
through EGL offscreen (Mesa llvmpipe on a CPU-only machine).  Each view is
rendered at 2x resolution with 4x MSAA and box-filtered down to 256x256.
Everything is deterministic: fixed seeds, fixed camera sets.

Each scene is written to a temporary folder next to its destination and then
renamed into place, so an interrupted run never leaves a half-written scene.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

# Must be set before pyrender / PyOpenGL are imported.
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Mesa llvmpipe: one rasteriser thread (the machine is shared); output does not depend on it.
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scene_scenes as S  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "scenes"
RES = 256
SUPERSAMPLE = 2
SHADOW_TEX_SZ = 1024

# name -> configuration
SCENES = {
    "robot": dict(kind="object", builder=S.build_robot, seed=1, radius=4.2, fov_x=0.6911, el=(-75, 80), n=(100, 5, 25)),
    "stilllife": dict(kind="object", builder=S.build_stilllife, seed=2, radius=4.5, target=(0.0, 0.0, 0.1), fov_x=0.6911, el=(5, 85), n=(100, 5, 25)),
    "garden": dict(kind="unbounded", builder=S.build_garden, seed=3, radius=(3.4, 4.8), fov_x=0.9, el=(6, 40), n=(100, 5, 25)),
    "courtyard": dict(kind="photos", builder=S.build_courtyard, seed=4, radius=4.6, fov_x=1.0, el=(12, 28), n=40),
}


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _patch_pyrender_shadow_frustum(pyrender):
    """pyrender fits the directional shadow map to the whole scene (here a 300 m sky dome);
    use the scene's own region of interest instead so shadows are sharp."""
    from pyrender.light import DirectionalLight
    from pyrender.renderer import Renderer

    if getattr(Renderer, "_splatlab_patched", False):
        return

    def _get_light_cam_matrices(self, scene, light_node, flags):
        light = light_node.light
        pose = scene.get_pose(light_node).copy()
        s = getattr(scene, "shadow_scale", None) or scene.scale
        c = getattr(scene, "shadow_center", None)
        c = scene.centroid if c is None else c
        camera = light._get_shadow_camera(s)
        P = camera.get_projection_matrix()
        if isinstance(light, DirectionalLight):
            direction = -pose[:3, 2]
            pose[:3, 3] = c - direction * s
        return np.linalg.inv(pose), P

    Renderer._get_light_cam_matrices = _get_light_cam_matrices
    # 1024^2 shadow maps (default 2048^2) over the 28 m region of interest: ~3 cm texels
    import pyrender.light
    import pyrender.renderer

    pyrender.light.SHADOW_TEX_SZ = SHADOW_TEX_SZ
    pyrender.renderer.SHADOW_TEX_SZ = SHADOW_TEX_SZ
    Renderer._splatlab_patched = True


class SceneRenderer:
    def __init__(self, spec: S.SceneSpec, fov_x: float, alpha: bool):
        import pyrender

        _patch_pyrender_shadow_frustum(pyrender)
        self.pyrender = pyrender
        self.alpha = alpha
        amb = spec.ambient
        self.scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 0.0], ambient_light=[amb, amb, amb])
        self.shadows = any(li.shadows for li in spec.lights)
        self.scene.shadow_center = np.asarray(spec.scene_center, float)
        self.scene.shadow_scale = 14.0
        cache = {}
        prims = []
        for part in spec.parts:
            m = part.material
            key = id(m.texture) if m.texture is not None else None
            tex = None
            if m.texture is not None:
                tex = cache.get(key)
                if tex is None:
                    tex = pyrender.Texture(source=np.ascontiguousarray(m.texture), source_channels="RGB")
                    cache[key] = tex
            if m.emissive:
                mat = pyrender.MetallicRoughnessMaterial(
                    baseColorFactor=[0.0, 0.0, 0.0, 1.0], metallicFactor=0.0, roughnessFactor=1.0,
                    emissiveTexture=tex, emissiveFactor=[1.0, 1.0, 1.0], doubleSided=True,
                )
            else:
                mat = pyrender.MetallicRoughnessMaterial(
                    baseColorFactor=[*m.color, 1.0], baseColorTexture=tex,
                    metallicFactor=m.metallic, roughnessFactor=m.roughness, doubleSided=False,
                )
            prims.append(
                pyrender.Primitive(
                    positions=part.positions.astype(np.float32), normals=part.normals.astype(np.float32),
                    texcoord_0=part.uvs.astype(np.float32), indices=part.faces.astype(np.uint32), material=mat,
                )
            )
        self.scene.add(pyrender.Mesh(prims))
        for li in spec.lights:
            pose = S.look_at_gl(li.position, li.target)
            if li.kind == "directional":
                light = pyrender.DirectionalLight(color=li.color, intensity=li.intensity)
            else:
                light = pyrender.PointLight(color=li.color, intensity=li.intensity)
            self.scene.add(light, pose=pose)
        cam = pyrender.PerspectiveCamera(yfov=fov_x, aspectRatio=1.0, znear=spec.znear, zfar=spec.zfar)
        self.cam_node = self.scene.add(cam, pose=np.eye(4))
        size = RES * SUPERSAMPLE
        self.renderer = pyrender.OffscreenRenderer(size, size)

    def render(self, c2w_gl: np.ndarray) -> np.ndarray:
        """Return uint8 RGBA (straight alpha) or RGB at RES x RES."""
        R = self.pyrender.RenderFlags
        flags = R.RGBA
        if self.shadows:
            flags |= R.SHADOWS_DIRECTIONAL
        self.scene.set_pose(self.cam_node, c2w_gl)
        color, _ = self.renderer.render(self.scene, flags=flags)
        # background is (0,0,0,0) so MSAA edge pixels are premultiplied: box-filter, then un-premultiply
        c = color.astype(np.float64) / 255.0
        k = SUPERSAMPLE
        c = c.reshape(RES, k, RES, k, 4).mean(axis=(1, 3))
        a = c[..., 3:4]
        if self.alpha:
            rgb = np.where(a > 1e-6, c[..., :3] / np.maximum(a, 1e-6), 0.0)
            out = np.concatenate([rgb, a], -1)
        else:
            out = c[..., :3]
        return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)

    def close(self):
        self.renderer.delete()


# ---------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------


def object_cameras(cfg, rng, spec):
    n_train, n_val, n_test = cfg["n"]
    el0, el1 = cfg["el"]
    # orbit the centre of the object's bounding box (or the configured target)
    pts = np.concatenate([p.positions for p in spec.parts])
    target = np.round(0.5 * (pts.min(0) + pts.max(0)), 4)
    if "target" in cfg:
        target = np.asarray(cfg["target"], float)
    sets = {
        "train": S.fibonacci_dirs(n_train, el0, el1, offset=rng.uniform(0, 2 * np.pi)),
        "val": S.sphere_dirs(rng, n_val, el0, el1),
        "test": S.spiral_dirs(n_test, max(el0, -20), min(el1, 60), phase=rng.uniform(0, 2 * np.pi)),
    }
    return {k: [S.look_at_gl(target + cfg["radius"] * d, target) for d in v] for k, v in sets.items()}, target


def unbounded_cameras(cfg, rng, center):
    n_train, n_val, n_test = cfg["n"]
    el0, el1 = cfg["el"]
    r0, r1 = cfg["radius"]
    center = np.asarray(center, float)
    out = {}
    for k, dirs in (
        ("train", S.fibonacci_dirs(n_train, el0, el1, offset=rng.uniform(0, 2 * np.pi))),
        ("val", S.sphere_dirs(rng, n_val, el0, el1)),
        ("test", S.spiral_dirs(n_test, el0 + 4, el1 - 4, phase=rng.uniform(0, 2 * np.pi))),
    ):
        poses = []
        for d in dirs:
            r = rng.uniform(r0, r1)
            look = center + rng.normal(0, 0.15, 3) * (1, 1, 0.5)
            poses.append(S.look_at_gl(center + r * d, look))
        out[k] = poses
    return out


def photo_cameras(cfg, rng, center):
    n = cfg["n"]
    el0, el1 = cfg["el"]
    center = np.asarray(center, float)
    poses = []
    for i in range(n):
        az = 2 * np.pi * i / n + rng.uniform(-0.05, 0.05)
        el = np.radians(el0 + (el1 - el0) * (0.5 + 0.5 * np.sin(4 * np.pi * i / n)))
        r = cfg["radius"] * rng.uniform(0.92, 1.08)
        d = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        look = center + rng.normal(0, 0.2, 3) * (1, 1, 0.3)
        poses.append(S.look_at_gl(center + r * d, look))
    return poses


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def save_png(path: Path, img: np.ndarray):
    Image.fromarray(img).save(path, optimize=True, compress_level=9)


def write_blender(tmp: Path, name, cfg, spec, cams, alpha: bool):
    rend = SceneRenderer(spec, cfg["fov_x"], alpha=alpha)
    n_img = 0
    try:
        for split, poses in cams.items():
            (tmp / split).mkdir(parents=True)
            frames = []
            for i, c2w in enumerate(poses):
                img = rend.render(c2w)
                save_png(tmp / split / f"r_{i}.png", img)
                frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": np.round(c2w, 8).tolist()})
                n_img += 1
            meta = {
                "camera_angle_x": cfg["fov_x"],
                "frames": frames,
                "scene_center": list(map(float, spec.scene_center)),
                "image_width": RES,
                "image_height": RES,
                "near": float(spec.znear),
                "far": float(spec.zfar) if cfg["kind"] == "unbounded" else None,
                "generator": f"scripts/make_scenes.py --only {name} (pyrender EGL, seed {cfg['seed']})",
            }
            if meta["far"] is None:  # object scene: no far plane, but a tight bounding box
                del meta["far"]
                pts = np.concatenate([p.positions for p in spec.parts])
                meta["object_bbox"] = [np.round(pts.min(0), 5).tolist(), np.round(pts.max(0), 5).tolist()]
            (tmp / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1) + "\n")
    finally:
        rend.close()
    return n_img


def write_photos(tmp: Path, name, cfg, spec, poses):
    rend = SceneRenderer(spec, cfg["fov_x"], alpha=False)
    (tmp / "photos").mkdir(parents=True)
    f = 0.5 * RES / np.tan(0.5 * cfg["fov_x"])
    gl_to_cv = np.diag([1.0, -1.0, -1.0, 1.0])
    frames = []
    try:
        for i, c2w in enumerate(poses):
            img = rend.render(c2w)
            fn = f"photos/{i:03d}.jpg"
            Image.fromarray(img).save(tmp / fn, quality=95, subsampling=0)
            frames.append({"file": fn, "image_name": f"{i:03d}.jpg", "camera_to_world": np.round(c2w @ gl_to_cv, 8).tolist()})
    finally:
        rend.close()
    cams = np.array([fr["camera_to_world"] for fr in frames])[:, :3, 3]
    meta = {
        "convention": "camera_to_world, OpenCV camera axes (x right, y down, z forward); world z up",
        "pixel_convention": "COLMAP: pixel (0,0) is the top-left corner of the image, so the top-left pixel centre is (0.5,0.5); subtract 0.5 from cx, cy for OpenCV's pixel-centre convention",
        "camera_model": "PINHOLE",
        "width": RES,
        "height": RES,
        "fx": float(f),
        "fy": float(f),
        "cx": RES / 2.0,
        "cy": RES / 2.0,
        "camera_angle_x": cfg["fov_x"],
        "scene_center": list(map(float, spec.scene_center)),
        "orbit_radius": float(np.mean(np.linalg.norm(cams - np.asarray(spec.scene_center), axis=1))),
        "frames": frames,
        "generator": f"scripts/make_scenes.py --only {name} (pyrender EGL, seed {cfg['seed']})",
    }
    (tmp / "ground_truth_poses.json").write_text(json.dumps(meta, indent=1) + "\n")
    return len(frames)


def triangulate_points(scene_dir: Path) -> None:
    """The unbounded scene ships the sparse points `splatlab triangulate` recovers from its training
    views and known poses (Blender-layout data has no SfM points; random points cannot reach the far
    field). SIFT matching is multi-threaded, so the point set may differ slightly between runs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from splatlab.data import load_scene
    from splatlab.data.triangulate import POINTS_FILE, to_data_coordinates, triangulate_scene, write_points_ply

    scene = load_scene(scene_dir)
    result = triangulate_scene(scene)
    write_points_ply(scene_dir / POINTS_FILE, to_data_coordinates(scene, result.points), result.colors)


def make_scene(name: str) -> tuple[int, float]:
    cfg = SCENES[name]
    t0 = time.time()
    rng = np.random.default_rng(cfg["seed"])
    spec = cfg["builder"](rng)
    cam_rng = np.random.default_rng(1000 + cfg["seed"])
    OUT.mkdir(exist_ok=True)
    tmp = OUT / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        if cfg["kind"] == "object":
            cams, _ = object_cameras(cfg, cam_rng, spec)
            n = write_blender(tmp, name, cfg, spec, cams, alpha=True)
        elif cfg["kind"] == "unbounded":
            cams = unbounded_cameras(cfg, cam_rng, spec.scene_center)
            n = write_blender(tmp, name, cfg, spec, cams, alpha=False)
            triangulate_points(tmp)
        else:
            n = write_photos(tmp, name, cfg, spec, photo_cameras(cfg, cam_rng, spec.scene_center))
        dest = OUT / name
        old = OUT / f".{name}.old"
        if old.exists():
            shutil.rmtree(old)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n, time.time() - t0


def main(argv=None):
    import signal

    # turn SIGTERM into SystemExit so the temp folder of the scene in progress is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(SCENES), action="append", help="render only this scene (repeatable)")
    args = ap.parse_args(argv)
    names = args.only or list(SCENES)
    total = time.time()
    for name in names:
        n, dt = make_scene(name)
        size = sum(p.stat().st_size for p in (OUT / name).rglob("*") if p.is_file())
        print(f"{name}: {n} images, {size / 1e6:.1f} MB, {dt:.1f} s", flush=True)
    print(f"done in {time.time() - total:.1f} s")


if __name__ == "__main__":
    main()
