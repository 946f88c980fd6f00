"""Multi-view video: several synchronised fixed cameras -> one `SceneData` of (camera, frame) views.

A `transforms.json` (nerfstudio layout: OpenGL camera-to-world poses, intrinsics at the top level
or per entry) describes the rig in one of two ways:

* one entry per camera whose `file_path` is a video file (decoded with imageio-ffmpeg, frames
  cached as PNG under `<scene>/.splatlab_cache/frames/`) or a folder of numbered frames
  (`0000.png, 0001.png, ...`; the frame rate comes from `fps` at the top level or in the entry);
* one entry per image with a `time` in seconds and a `camera` (name or id) key; entries without
  a camera key are grouped by identical pose.

Every view's camera carries `times` (seconds) and `camera_ids` (index of the physical camera).
One whole camera is held out for testing, as on Neural 3D Video: `test_camera` (name or index)
in the json, else the first camera. Cameras of different length or frame rate, a missing frame
or an unreadable video are rejected with one line naming the file.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .nerfstudio import _intrinsics, auto_orient_and_center, frames_of, pose_of, read_json
from .scene import (DatasetError, SceneData, as_background, build_views, compute_scene_scale,
                    default_cache_dir, one_line, opengl_c2w_to_viewmat)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def is_video_transforms(meta: dict, data_dir: Path) -> bool:
    """True when a transforms.json describes multi-view video (timed frames, videos or frame folders)."""
    frames = meta.get("frames")
    if not isinstance(frames, list):
        return False
    for fr in frames:
        if not isinstance(fr, dict):
            continue
        if "time" in fr:
            return True
        p = Path(str(fr.get("file_path", "")))
        p = p if p.is_absolute() else data_dir / p
        if p.suffix.lower() in VIDEO_SUFFIXES or p.is_dir():
            return True
    return False


# ------------------------------------------------------------------------------------ one camera

def numbered_frames(folder: Path) -> list[Path]:
    """The frame images of a folder in order; DatasetError when a number in the sequence is missing."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not files:
        raise DatasetError(f"{folder}: no frame images in the folder")
    numbered = []
    for p in files:
        m = re.search(r"(\d+)$", p.stem)
        if m is None:
            raise DatasetError(f"{p}: frame file name has no frame number")
        numbered.append((int(m.group(1)), p))
    numbered.sort()
    first = numbered[0][0]
    for k, (n, p) in enumerate(numbered):
        if n != first + k:
            raise DatasetError(f"{folder}: missing frame {first + k} (frames run {first}..{numbered[-1][0]})")
    return [p for _, p in numbered]


def decode_video(video: Path, cache_root: Path) -> tuple[list[Path], float]:
    """Decode a video file into cached PNG frames (written to a temp folder, then renamed)."""
    if not video.is_file():
        raise DatasetError(f"missing video file {video}")
    st = video.stat()
    key = hashlib.sha1(f"{video.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    out = cache_root / f"{video.stem}-{key}"
    fps_file = out / "fps.txt"
    if fps_file.is_file():
        return sorted(out.glob("*.png")), float(fps_file.read_text())
    import imageio_ffmpeg

    tmp = cache_root / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        reader = imageio_ffmpeg.read_frames(str(video))
        meta = next(reader)
        w, h = meta["size"]
        fps = float(meta["fps"])
        n = 0
        for n, buf in enumerate(reader, start=1):
            frame = np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
            Image.fromarray(frame).save(tmp / f"{n - 1:06d}.png")
        if n == 0:
            raise ValueError("no frames decoded")
        (tmp / "fps.txt").write_text(repr(fps))
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"unreadable video {video}: {one_line(exc)[:200]}") from None
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return sorted(out.glob("*.png")), fps


# ------------------------------------------------------------------------------------ scene

def _camera_streams(meta: dict, frames: list[dict], json_path: Path, cache_root: Path):
    """[(name, pose entry, [frame paths], [times])] for every camera, in json order."""
    data_dir = json_path.parent
    top_fps = meta.get("fps")
    streams = []
    if any("time" in fr for fr in frames):  # one entry per image
        groups: dict[str, list] = {}
        for i, fr in enumerate(frames):
            if "time" not in fr:
                raise DatasetError(f"{json_path}: frame {i} has no \"time\" (others do)")
            cam = fr.get("camera", fr.get("camera_id"))
            key = str(cam) if cam is not None else repr(np.round(pose_of(fr, i, json_path), 6).tolist())
            groups.setdefault(key, []).append((float(fr["time"]), i, fr))
        all_times = sorted({t for g in groups.values() for t, _, _ in g})
        for k, (key, g) in enumerate(groups.items()):
            g.sort(key=lambda e: e[0])
            times = [t for t, _, _ in g]
            if times != all_times:
                missing = sorted(set(all_times) - set(times))
                name = g[0][2].get("camera", g[0][2].get("camera_id", f"#{k}"))
                raise DatasetError(f"{json_path}: camera {name} is missing the frame at time {missing[0]:g} s"
                                   if missing else f"{json_path}: camera {name} has two frames at one time")
            paths = [data_dir / str(fr["file_path"]) for _, _, fr in g]
            for p in paths:
                if not p.is_file():
                    raise DatasetError(f"missing frame {p}")
            name = str(g[0][2].get("camera", g[0][2].get("camera_id", f"cam{k:02d}")))
            streams.append((name, g[0][1], g[0][2], paths, times, None))
        return streams
    for i, fr in enumerate(frames):
        p = Path(str(fr["file_path"]))
        p = p if p.is_absolute() else data_dir / p
        if p.suffix.lower() in VIDEO_SUFFIXES:
            paths, fps = decode_video(p, cache_root)
        elif p.is_dir():
            paths = numbered_frames(p)
            fps = fr.get("fps", top_fps)
            if fps is None:
                raise DatasetError(f"{json_path}: frame folder {p} needs an \"fps\" (top level or in its entry)")
            fps = float(fps)
        elif not p.exists():
            raise DatasetError(f"missing video or frame folder {p}")
        else:
            raise DatasetError(f"{p}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
        if top_fps is not None and p.suffix.lower() in VIDEO_SUFFIXES and abs(fps - float(top_fps)) > 1e-3:
            raise DatasetError(f"{p}: video runs at {fps:g} fps but {json_path.name} says {float(top_fps):g}")
        name = str(fr.get("camera", p.stem))
        streams.append((name, i, fr, paths, [k / fps for k in range(len(paths))], (fps, p)))
    ref = streams[0]
    for s in streams[1:]:
        if s[5] is not None and ref[5] is not None and abs(s[5][0] - ref[5][0]) > 1e-3:
            raise DatasetError(f"{s[5][1]}: {s[5][0]:g} fps but {ref[5][1]} runs at {ref[5][0]:g} fps")
        if len(s[3]) != len(ref[3]):
            raise DatasetError(f"{s[5][1]}: {len(s[3])} frames but {ref[5][1]} has {len(ref[3])}")
    return streams


def load_video_scene(path, downscale: int = 1, background=(1.0, 1.0, 1.0), cache_images: bool = False,
                     max_frames: int = 0) -> SceneData:
    """Load a multi-view video scene (folder with transforms.json, or the json itself).

    `max_frames` > 0 keeps only each camera's first frames (a shorter clip of the same rig).
    """
    src = Path(path)
    json_path = src if src.is_file() else src / "transforms.json"
    data_dir = json_path.parent
    meta = read_json(json_path)
    frames = frames_of(meta, json_path)
    streams = _camera_streams(meta, frames, json_path, default_cache_dir(data_dir) / "frames")
    if len(streams) < 2:
        raise DatasetError(f"{json_path}: multi-view video needs at least 2 cameras, found {len(streams)}")
    names = [s[0] for s in streams]
    test = meta.get("test_camera", 0)
    if isinstance(test, int) and not isinstance(test, bool) and 0 <= test < len(streams):
        test_cam = test
    elif str(test) in names:
        test_cam = names.index(str(test))
    else:
        raise DatasetError(f"{json_path}: test_camera {test!r} is not one of the cameras ({', '.join(names)})")

    c2w, Ks, sizes = [], [], []
    for name, index, fr, _, _, _ in streams:
        c2w.append(pose_of(fr, index, json_path))
        K, dist, size = _intrinsics(fr, meta, index, json_path)
        if np.any(dist != 0):
            raise DatasetError(f"{json_path}: camera {name} has lens distortion; multi-view video needs pinhole frames")
        Ks.append(K), sizes.append(size)
    c2w_t = torch.tensor(np.stack(c2w), dtype=torch.float64)
    T = auto_orient_and_center(c2w_t)  # the same normalisation as nerfstudio scenes
    T4 = torch.cat([T, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)], 0)
    extent = (T4 @ c2w_t)[:, :3, 3].abs().max().item()
    scale = 1.0 / extent if extent > 1e-12 else 1.0
    S = torch.diag(torch.tensor([scale, scale, scale, 1.0], dtype=torch.float64)) @ T4
    new_c2w = S @ c2w_t
    new_c2w[:, :3, :3] /= scale
    cam_viewmats = opengl_c2w_to_viewmat(new_c2w).float()

    paths, vnames, vms, vKs, vsizes, times, cam_ids = [], [], [], [], [], [], []
    for c, (name, _, _, fpaths, ftimes, _) in enumerate(streams):
        keep = len(fpaths) if max_frames <= 0 else min(max_frames, len(fpaths))
        for p, t in zip(fpaths[:keep], ftimes[:keep]):
            paths.append(p), vnames.append(f"{name}/{Path(p).name}"), vms.append(cam_viewmats[c])
            vKs.append(torch.tensor(Ks[c], dtype=torch.float32)), vsizes.append(sizes[c])
            times.append(t), cam_ids.append(c)
    views = build_views(paths, vnames, torch.stack(vms), torch.stack(vKs), vsizes, downscale,
                        None, background, None, cache_images)
    views.cameras.times = torch.tensor(times, dtype=torch.float32)
    views.cameras.camera_ids = torch.tensor(cam_ids, dtype=torch.long)
    test_idx = [i for i, c in enumerate(cam_ids) if c == test_cam]
    train_idx = [i for i, c in enumerate(cam_ids) if c != test_cam]
    train_cams = [c for c in range(len(streams)) if c != test_cam]
    return SceneData(train=views.subset(train_idx), test=views.subset(test_idx), points=None, points_rgb=None,
                     scene_scale=compute_scene_scale(cam_viewmats[train_cams]),
                     background=as_background(background), source=src, transform=S.float(), format="video")


__all__ = ["load_video_scene", "is_video_transforms", "decode_video", "numbered_frames"]
