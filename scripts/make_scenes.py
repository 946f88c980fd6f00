#!/usr/bin/env python
"""Regenerate splatlab's bundled ground-truth scenes into scenes/.

    python scripts/make_scenes.py              # all scenes
    python scripts/make_scenes.py --only robot # one scene

Blurred captures for deblurring (not committed: scenes/ is at its size budget):

    python scripts/make_scenes.py --only robot --only garden --blur defocus --blur motion --blur none \\
        --res 128 --supersample 1 --train-every 5 --test-every 2

writes `.cache/scenes/<scene>-<blur>/` (`--out` to change): the same cameras as the bundled
scene (every 5th training camera: 20 of 100; every 2nd test camera: 13 of 25), training images
blurred, test and val images sharp, all at `--res` pixels.

- `defocus`: a thin lens. Each training image is the average of `BLUR_SAMPLES` renders from points
  of the lens aperture (a disk of radius `aperture` x camera distance, Vogel-spiral samples turned
  by a random angle per view). Each aperture sample keeps the focus plane fixed by moving the
  principal point by f*offset/focus (an off-axis frustum), so points at the view's focus distance
  stay sharp and blur grows with |1/depth - 1/focus|. The focus distance is drawn per view:
  camera distance to the scene centre x (1 -/+ U(focus_lo, focus_hi)), in front of or behind it.
- `motion`: camera shake during the exposure. Each training image is the average of
  `BLUR_SAMPLES` renders along a straight pose path through the view's pose: a translation in
  the image plane and a rotation about a random axis, both swept linearly over the exposure.
- The unbounded scene keeps the bundled scene's triangulated `points3d.ply` (same world frame);
  its `transforms_*.json` record the blur and its parameters per view.

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

# blurred variants (--blur): per scene kind, lens aperture radius and focus offsets (fractions of the
# camera distance), and the motion sweep (translation as a fraction of the distance, rotation in deg).
# The unbounded values were calibrated (2026-12-07, before any deblur run on them) so a blurred garden
# training view scores about as low against its sharp image as robot's do (robot 24.2 / 23.9 dB for
# defocus / motion; garden 24.7 / 25.4, was 30.2 / 32.1 with the object values, too weak to measure a
# deblurring gain against: gs3d lost only 1.0-1.4 dB to that blur)
BLUR = {
    "object": dict(aperture=0.07, focus_lo=0.15, focus_hi=0.3, shift=0.03, rot_deg=1.2),
    "unbounded": dict(aperture=0.1, focus_lo=0.1, focus_hi=0.3, shift=0.1, rot_deg=6.5),
}
BLUR_SAMPLES = 8


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
        # the same pinhole as an intrinsics camera whose principal point can move (thin-lens samples)
        self.focal = 0.5 * size / np.tan(0.5 * fov_x)
        self.lens = pyrender.IntrinsicsCamera(self.focal, self.focal, size / 2, size / 2, znear=spec.znear,
                                              zfar=spec.zfar)
        self.lens_node = self.scene.add(self.lens, pose=np.eye(4))
        self.scene.main_camera_node = self.cam_node
        self.renderer = pyrender.OffscreenRenderer(size, size)

    def render(self, c2w_gl: np.ndarray, principal_shift: tuple[float, float] | None = None,
               as_float: bool = False) -> np.ndarray:
        """Return uint8 RGBA (straight alpha) or RGB at RES x RES (premultiplied float64 in [0, 1]
        when `as_float`, for averaging). `principal_shift` (in pixels of the RES image, image axes:
        x right, y down, as pyrender's cx, cy) renders an off-axis frustum (one thin-lens sample)."""
        R = self.pyrender.RenderFlags
        flags = R.RGBA
        if self.shadows:
            flags |= R.SHADOWS_DIRECTIONAL
        if principal_shift is None:
            node = self.cam_node
        else:
            node = self.lens_node
            size = RES * SUPERSAMPLE
            self.lens.cx = size / 2 + principal_shift[0] * SUPERSAMPLE
            self.lens.cy = size / 2 + principal_shift[1] * SUPERSAMPLE
        self.scene.main_camera_node = node
        self.scene.set_pose(node, c2w_gl)
        color, _ = self.renderer.render(self.scene, flags=flags)
        if as_float:
            c = color.astype(np.float64) / 255.0
            k = SUPERSAMPLE
            return c.reshape(RES, k, RES, k, 4).mean(axis=(1, 3))
        return self.finish(color.astype(np.float64) / 255.0, box=True)

    def finish(self, c: np.ndarray, box: bool = False) -> np.ndarray:
        """Premultiplied float RGBA -> uint8 straight RGBA (or RGB), box-filtered first if `box`.
        The background is (0,0,0,0), so MSAA edge pixels (and averaged blur samples) are
        premultiplied: filter/average first, then un-premultiply."""
        if box:
            k = SUPERSAMPLE
            c = c.reshape(RES, k, RES, k, 4).mean(axis=(1, 3))
        return self._to_uint8(c)

    def _to_uint8(self, c: np.ndarray) -> np.ndarray:
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


def _vogel_disk(n: int, angle: float) -> np.ndarray:
    """n points spread evenly over the unit disk (Vogel spiral), turned by `angle`."""
    k = np.arange(n) + 0.5
    r = np.sqrt(k / n)
    th = k * np.pi * (3.0 - np.sqrt(5.0)) + angle
    return np.stack([r * np.cos(th), r * np.sin(th)], -1)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * (K @ K)


def blurred_render(rend: "SceneRenderer", c2w: np.ndarray, target: np.ndarray, blur: str, bcfg: dict,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One blurred capture at pose `c2w` (OpenGL axes): the average of BLUR_SAMPLES renders.

    defocus: thin lens, aperture samples on a disk in the camera plane with the principal point
    moved so the focus plane stays put; motion: poses swept along a short straight path."""
    dist = float(np.dot(np.asarray(target, float) - c2w[:3, 3], -c2w[:3, 2]))  # depth of the target
    f_res = rend.focal / SUPERSAMPLE
    acc = 0.0
    if blur == "defocus":
        radius = bcfg["aperture"] * dist
        side = rng.choice([-1.0, 1.0])
        focus = dist * (1.0 + side * rng.uniform(bcfg["focus_lo"], bcfg["focus_hi"]))
        for ox, oy in radius * _vogel_disk(BLUR_SAMPLES, rng.uniform(0, 2 * np.pi)):
            pose = c2w.copy()
            pose[:3, 3] += c2w[:3, 0] * ox + c2w[:3, 1] * oy
            acc = acc + rend.render(pose, principal_shift=(f_res * ox / focus, -f_res * oy / focus), as_float=True)
        info = {"focus_distance": round(float(focus), 5), "aperture_radius": round(float(radius), 5)}
    elif blur == "motion":
        a = rng.uniform(0, 2 * np.pi)
        shift = bcfg["shift"] * dist * np.array([np.cos(a), np.sin(a), 0.0])  # camera frame, image plane
        axis = rng.normal(size=3)
        angle = np.radians(bcfg["rot_deg"])
        for t in np.linspace(-0.5, 0.5, BLUR_SAMPLES):
            pose = c2w.copy()
            pose[:3, :3] = c2w[:3, :3] @ _rotation(axis, t * angle)
            pose[:3, 3] += c2w[:3, :3] @ (t * shift)
            acc = acc + rend.render(pose, as_float=True)
        info = {"shift_camera": np.round(shift, 5).tolist(), "rot_axis": np.round(axis / np.linalg.norm(axis), 5).tolist(),
                "rot_deg": bcfg["rot_deg"]}
    else:
        raise ValueError(f"unknown blur {blur!r} (defocus, motion)")
    return rend.finish(acc / BLUR_SAMPLES), info


def write_blender(tmp: Path, name, cfg, spec, cams, alpha: bool, blur: str | None = None, target=None,
                  progress: bool = False, train_every: int = 1, test_every: int = 1):
    rend = SceneRenderer(spec, cfg["fov_x"], alpha=alpha)
    blur_rng = np.random.default_rng(5000 + cfg["seed"])
    bcfg = BLUR[cfg["kind"]] if blur else None
    n_img = 0
    try:
        for split, poses in cams.items():
            if split == "train":  # a subset, spread over the same camera set (blurred captures are slow)
                poses = poses[::train_every]
            (tmp / split).mkdir(parents=True)
            frames = []
            if split == "test":
                poses = poses[::test_every]
            blurred = blur not in (None, "none") and split == "train"  # test (and val) views stay sharp
            for i, c2w in enumerate(poses):
                frame = {"file_path": f"./{split}/r_{i}", "transform_matrix": np.round(c2w, 8).tolist()}
                if blurred:
                    img, info = blurred_render(rend, c2w, target, blur, bcfg, blur_rng)
                    frame["blur"] = info
                else:
                    img = rend.render(c2w)
                save_png(tmp / split / f"r_{i}.png", img)
                frames.append(frame)
                n_img += 1
                if progress:
                    print(f"\r{name}-{blur} {split} {i + 1}/{len(poses)}", end="", file=sys.stderr, flush=True)
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
            if blur is not None:
                meta["generator"] += (f" --blur {blur} --res {RES} --supersample {SUPERSAMPLE} --train-every {train_every}"
                                      f" --test-every {test_every}")
                meta["blur"] = {"kind": blur if blurred else "none (sharp views)", "samples": BLUR_SAMPLES, **bcfg}
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


def make_scene(name: str, blur: str | None = None, out: Path | None = None, train_every: int = 1,
               test_every: int = 1) -> tuple[int, float]:
    cfg = SCENES[name]
    t0 = time.time()
    rng = np.random.default_rng(cfg["seed"])
    spec = cfg["builder"](rng)
    cam_rng = np.random.default_rng(1000 + cfg["seed"])
    out = out or OUT
    out.mkdir(parents=True, exist_ok=True)
    folder = name if blur is None else f"{name}-{'sharp' if blur == 'none' else blur}"
    tmp = out / f".{folder}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        if blur is not None and cfg["kind"] not in BLUR:
            raise SystemExit(f"make_scenes: --blur needs an object or unbounded scene, not {name} ({cfg['kind']})")
        if cfg["kind"] == "object":
            cams, target = object_cameras(cfg, cam_rng, spec)
            n = write_blender(tmp, name, cfg, spec, cams, alpha=True, blur=blur, target=target, progress=blur is not None,
                              train_every=train_every, test_every=test_every)
        elif cfg["kind"] == "unbounded":
            cams = unbounded_cameras(cfg, cam_rng, spec.scene_center)
            n = write_blender(tmp, name, cfg, spec, cams, alpha=False, blur=blur, target=spec.scene_center,
                              progress=blur is not None, train_every=train_every, test_every=test_every)
            bundled = OUT / name / "points3d.ply"
            if blur is not None and bundled.is_file():  # same world frame: reuse the bundled SfM points
                shutil.copy(bundled, tmp / bundled.name)
            else:
                triangulate_points(tmp)
        else:
            n = write_photos(tmp, name, cfg, spec, photo_cameras(cfg, cam_rng, spec.scene_center))
        dest = out / folder
        old = out / f".{folder}.old"
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

    global RES, SUPERSAMPLE
    # turn SIGTERM into SystemExit so the temp folder of the scene in progress is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(SCENES), action="append", help="render only this scene (repeatable)")
    ap.add_argument("--blur", choices=["defocus", "motion", "none"], action="append",
                    help="write blurred variants <scene>-<blur> (repeatable; training views blurred, test sharp; "
                         "none: <scene>-sharp, the same cameras unblurred, the baseline for deblur on sharp data)")
    ap.add_argument("--res", type=int, default=RES, help=f"image side in pixels (default {RES})")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default scenes/, or .cache/scenes/ with --blur)")
    ap.add_argument("--train-every", type=int, default=1,
                    help="keep every k-th training camera (default 1: all)")
    ap.add_argument("--test-every", type=int, default=1, help="keep every k-th test camera (default 1: all)")
    ap.add_argument("--supersample", type=int, default=SUPERSAMPLE,
                    help=f"render at this multiple of --res and box-filter down (default {SUPERSAMPLE})")
    args = ap.parse_args(argv)
    if min(args.train_every, args.test_every, args.supersample) < 1:
        ap.error("--train-every, --test-every and --supersample must be >= 1")
    if args.res < 16:
        ap.error("--res must be >= 16")
    RES, SUPERSAMPLE = args.res, args.supersample
    names = args.only or list(SCENES)
    out = args.out or (ROOT / ".cache" / "scenes" if args.blur else OUT)
    total = time.time()
    for name in names:
        for blur in args.blur or [None]:
            n, dt = make_scene(name, blur, out, args.train_every, args.test_every)
            folder = out / (name if blur is None else f"{name}-{'sharp' if blur == 'none' else blur}")
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            print(f"\n{folder.name}: {n} images, {size / 1e6:.1f} MB, {dt:.1f} s", flush=True)
    print(f"done in {time.time() - total:.1f} s")


if __name__ == "__main__":
    main()
