"""MP4 encoding of rendered frames (imageio-ffmpeg's bundled ffmpeg), shared by `splatlab render
--time-range` and the viewer's camera paths."""
from __future__ import annotations

import os

import numpy as np


def write_mp4(frames_dir: str, n_frames: int, fps: float, out_path: str) -> str:
    """Encode frame_00000.png ... with imageio-ffmpeg's bundled ffmpeg (atomic: temp file + rename)."""
    import imageio_ffmpeg
    from PIL import Image

    tmp = out_path + ".tmp.mp4"
    first = np.asarray(Image.open(os.path.join(frames_dir, "frame_00000.png")).convert("RGB"))
    h, w = first.shape[:2]
    writer = imageio_ffmpeg.write_frames(tmp, (w - w % 2, h - h % 2), fps=fps, codec="libx264",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=8)
    writer.send(None)
    try:
        for i in range(n_frames):
            img = np.asarray(Image.open(os.path.join(frames_dir, f"frame_{i:05d}.png")).convert("RGB"))
            writer.send(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]))
    finally:
        writer.close()
    os.replace(tmp, out_path)
    return out_path
