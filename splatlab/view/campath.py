"""Camera paths: keyframes -> smooth interpolated cameras -> PNG frames (+ MP4 when imageio-ffmpeg is there)."""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from .render import RenderSet, ViewCamera, render_image, save_png_atomic, to_uint8
from ..render.video import write_mp4


def _slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(np.clip(d, -1, 1))
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


def _catmull_rom(p0, p1, p2, p3, t: float) -> np.ndarray:
    t2, t3 = t * t, t * t * t
    return 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)


def interpolate_path(keys: Sequence[ViewCamera], n_frames: int, loop: bool = False) -> list[ViewCamera]:
    """`n_frames` cameras through the keyframes: Catmull-Rom positions, slerped rotations, linear fov."""
    if not keys:
        return []
    if len(keys) == 1 or n_frames <= 1:
        return [keys[0]] * max(1, n_frames)
    pos = [np.asarray(k.position, dtype=np.float64) for k in keys]
    rot = [np.asarray(k.wxyz, dtype=np.float64) for k in keys]
    n_seg = len(keys) if loop else len(keys) - 1
    out = []
    for f in range(n_frames):
        u = f / (n_frames if loop else n_frames - 1) * n_seg
        seg = min(int(u), n_seg - 1)
        t = u - seg
        idx = [(seg + o) % len(keys) if loop else min(max(seg + o, 0), len(keys) - 1) for o in (-1, 0, 1, 2)]
        p = _catmull_rom(*(pos[i] for i in idx), t)
        q = _slerp(rot[idx[1]], rot[idx[2]], t)
        fov = (1 - t) * keys[idx[1]].fov_y + t * keys[idx[2]].fov_y
        out.append(ViewCamera(tuple(q), tuple(p), fov, keys[0].aspect))
    return out


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def render_path(rs: RenderSet, cameras: Sequence[ViewCamera], out_dir: str, width: int, height: int,
                mode: str = "RGB", background=(0.0, 0.0, 0.0), fps: float = 30.0, make_mp4: bool = True,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> dict:
    """Render every camera to `out_dir/frame_NNNNN.png`; also `out_dir/path.mp4` when possible."""
    os.makedirs(out_dir, exist_ok=True)
    n = len(cameras)
    done = 0
    for i, cam in enumerate(cameras):
        if cancelled is not None and cancelled():
            break
        cam = ViewCamera(cam.wxyz, cam.position, cam.fov_y, width / height)
        img = render_image(rs, cam, width, height, mode, background)
        save_png_atomic(img, os.path.join(out_dir, f"frame_{i:05d}.png"))
        done = i + 1
        if progress is not None:
            progress(done, n)
    result = {"frames": done, "dir": out_dir, "mp4": None}
    if make_mp4 and done == n and n > 0 and mp4_available():
        result["mp4"] = write_mp4(out_dir, n, fps, os.path.join(out_dir, "path.mp4"))
    return result


__all__ = ["interpolate_path", "render_path", "mp4_available", "write_mp4", "to_uint8"]
