#!/usr/bin/env python
"""Render the bundled dynamic multi-view video scene (for `--method temporal` and its benchmark).

    python scripts/make_dynamic_scene.py                          # short clip -> .cache/scenes/dynamic
    python scripts/make_dynamic_scene.py --frames 1800 --fps 30 --out .cache/scenes/dynamic_long  # 60 s

Content: a static checkered plaza with a pillar and a wall (static), a door swinging slowly on its
hinge (one swing over the clip's first 24 frames, then it keeps going at that rate) and a ball
bouncing fast in front of it plus a spinning paddle (fast parts). 12 fixed cameras on a ring,
96x96 px. Renderer: pyrender (OpenGL through EGL, Mesa llvmpipe on the CPU), the renderer the other
scenes use. Animation is a pure function of the frame index, so any clip length is deterministic.
Output: `videos/camNN.mp4` (H.264, near-lossless, imageio-ffmpeg) and a `transforms.json` (nerfstudio
OpenGL poses, `fps`, `test_camera`), written to a temp folder and renamed into place.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scene_scenes import look_at_gl  # noqa: E402  (scripts/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parent.parent


def camera_ring(n: int, radius: float = 4.0, height: float = 1.6, target=(0.0, 0.0, 0.5)) -> list[np.ndarray]:
    out = []
    for i in range(n):
        az = 2 * math.pi * i / n + 0.1
        h = height + 0.5 * (i % 2)  # two heights: better triangulation of depth
        out.append(look_at_gl((radius * math.cos(az), radius * math.sin(az), h), target))
    return out


def _checker_ground(pyrender, trimesh, size=3.0, cells=8):
    verts, faces, colors = [], [], []
    step = 2 * size / cells
    for i in range(cells):
        for j in range(cells):
            x0, y0 = -size + i * step, -size + j * step
            base = len(verts)
            verts += [(x0, y0, 0), (x0 + step, y0, 0), (x0 + step, y0 + step, 0), (x0, y0 + step, 0)]
            faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
            c = (200, 190, 160, 255) if (i + j) % 2 else (90, 110, 80, 255)
            colors += [c] * 4
    mesh = trimesh.Trimesh(np.array(verts, float), np.array(faces), vertex_colors=np.array(colors, np.uint8),
                           process=False)
    return pyrender.Mesh.from_trimesh(mesh, smooth=False)


def _box(pyrender, trimesh, extents, color):
    m = trimesh.creation.box(extents=extents)
    m.visual.vertex_colors = np.array([*color, 255], np.uint8)
    return pyrender.Mesh.from_trimesh(m, smooth=False)


def translate(x, y, z) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    m = np.eye(4)
    m[:2, :2] = [[c, -s], [s, c]]
    return m


def animate(frame: int, fps: float) -> dict[str, np.ndarray]:
    """Node poses at a frame: the door swings slowly, the ball bounces and the paddle spins fast."""
    t = frame / fps
    door = translate(-0.6, 0.9, 0.0) @ rot_z(0.9 * math.sin(2 * math.pi * t / 4.0)) @ translate(0.45, 0.0, 0.55)
    ball = translate(0.6 * math.cos(2 * math.pi * t / 1.5), -0.4, 0.2 + 0.8 * abs(math.sin(2 * math.pi * t / 1.0)))
    paddle = translate(-0.9, -0.7, 0.7) @ rot_z(2 * math.pi * t / 1.2)
    return {"door": door, "ball": ball, "paddle": paddle}


def render_clip(out: Path, n_frames: int, fps: float, n_cams: int, size: int) -> None:
    import imageio_ffmpeg
    import pyrender
    import trimesh
    from tqdm import tqdm

    scene = pyrender.Scene(bg_color=[0.62, 0.75, 0.9, 1.0], ambient_light=[0.35, 0.35, 0.35])
    scene.add(_checker_ground(pyrender, trimesh))
    scene.add(_box(pyrender, trimesh, (0.3, 0.3, 1.4), (180, 60, 50)), pose=translate(1.1, 0.9, 0.7))
    scene.add(_box(pyrender, trimesh, (2.4, 0.15, 0.5), (120, 120, 170)), pose=translate(0.2, 1.5, 0.25))
    nodes = {
        "door": scene.add(_box(pyrender, trimesh, (0.9, 0.08, 1.1), (70, 140, 200))),
        "ball": scene.add(pyrender.Mesh.from_trimesh(
            trimesh.creation.icosphere(subdivisions=2, radius=0.22, face_colors=[240, 200, 30, 255]), smooth=False)),
        "paddle": scene.add(_box(pyrender, trimesh, (0.8, 0.12, 0.12), (220, 90, 200))),
    }
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=look_at_gl((2, -1.5, 4), (0, 0, 0)))
    fov_y = 0.75
    cam_node = scene.add(pyrender.PerspectiveCamera(yfov=fov_y, aspectRatio=1.0, znear=0.1, zfar=50.0))
    ss = 2  # supersample 2x, box filter down
    renderer = pyrender.OffscreenRenderer(size * ss, size * ss)
    poses = camera_ring(n_cams)
    (out / "videos").mkdir(parents=True)
    writers = []
    for c in range(n_cams):
        w = imageio_ffmpeg.write_frames(str(out / "videos" / f"cam{c:02d}.mp4"), (size, size), fps=fps,
                                        codec="libx264", quality=None, output_params=["-crf", "8"],
                                        pix_fmt_out="yuv444p", macro_block_size=1, ffmpeg_log_level="error")
        w.send(None)
        writers.append(w)
    try:
        for f in tqdm(range(n_frames), desc="frames"):
            for name, pose in animate(f, fps).items():
                scene.set_pose(nodes[name], pose)
            for c, pose in enumerate(poses):
                scene.set_pose(cam_node, pose)
                color, _ = renderer.render(scene)
                img = color.astype(np.float32).reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
                writers[c].send(np.ascontiguousarray(np.round(img).astype(np.uint8)))
    finally:
        for w in writers:
            w.close()
        renderer.delete()
    focal = 0.5 * size / math.tan(fov_y / 2)
    meta = {"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size,
            "camera_model": "PINHOLE", "fps": fps, "test_camera": "cam00",
            "frames": [{"file_path": f"videos/cam{c:02d}.mp4", "camera": f"cam{c:02d}",
                        "transform_matrix": pose.tolist()} for c, pose in enumerate(poses)]}
    (out / "transforms.json").write_text(json.dumps(meta, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "scenes" / "dynamic")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--cameras", type=int, default=12)
    ap.add_argument("--size", type=int, default=96)
    args = ap.parse_args(argv)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    render_clip(tmp, args.frames, args.fps, args.cameras, args.size)
    shutil.rmtree(args.out, ignore_errors=True)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({args.cameras} cameras x {args.frames} frames at {args.fps:g} fps, {args.size}px)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
