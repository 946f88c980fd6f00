"""Blender-synthetic layout (NeRF synthetic scenes) -> SceneData.

`transforms_{train,val,test}.json` each hold `camera_angle_x` (horizontal field of view, radians)
and `frames` with `file_path` (usually without extension: `.png` is appended) and a 4x4
camera-to-world `transform_matrix` in OpenGL camera axes. Images are RGBA and are composited on
`background` when loaded. Such scenes carry no point cloud; `points3d.ply` next to the json files
(as the original 3DGS code keeps it, e.g. written by `splatlab triangulate`) is read when present,
else `points` is None and training initialises randomly.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .nerfstudio import frames_of, load_ply_points, pose_of, read_json
from .scene import (DatasetError, SceneData, _open_header, as_background, build_views,
                    compute_scene_scale, opengl_c2w_to_viewmat)


def _frame_path(root: Path, file_path: str) -> Path:
    p = Path(file_path)
    if not p.suffix:
        p = p.with_name(p.name + ".png")
    return p if p.is_absolute() else root / p


def _load_split(root: Path, split: str, downscale: int, background):
    json_path = root / f"transforms_{split}.json"
    meta = read_json(json_path)
    frames = frames_of(meta, json_path)
    try:
        angle = float(meta["camera_angle_x"])
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{json_path}: missing or invalid camera_angle_x") from None
    if not 0 < angle < math.pi:
        raise DatasetError(f"{json_path}: camera_angle_x must be in (0, pi) radians, got {angle}")
    paths = [_frame_path(root, str(f["file_path"])) for f in frames]
    names = [str(f["file_path"]) for f in frames]
    c2w = torch.tensor(np.stack([pose_of(f, i, json_path) for i, f in enumerate(frames)]), dtype=torch.float64)
    w, h = _open_header(paths[0])
    focal = 0.5 * w / math.tan(0.5 * angle)
    K = torch.tensor([[focal, 0.0, w / 2.0], [0.0, focal, h / 2.0], [0.0, 0.0, 1.0]])
    Ks = K.expand(len(frames), 3, 3).clone()
    viewmats = opengl_c2w_to_viewmat(c2w).float()
    # sizes None: every file must have the size of the first one (K is valid at that size)
    return build_views(paths, names, viewmats, Ks, [None] * len(frames), downscale, None, background)


def load_blender(path, downscale: int = 1, background=(1.0, 1.0, 1.0), test_split: str = "test",
                 cache_images: bool = False) -> SceneData:
    """Load train from transforms_train.json and test from transforms_<test_split>.json."""
    root = Path(path)
    if root.is_file():
        root = root.parent
    if not (root / "transforms_train.json").is_file():
        raise DatasetError(f"{root}: no transforms_train.json")
    train = _load_split(root, "train", downscale, background)
    if (root / f"transforms_{test_split}.json").is_file():
        test = _load_split(root, test_split, downscale, background)
        if (test.width, test.height) != (train.width, train.height):
            raise DatasetError(f"{root / f'transforms_{test_split}.json'}: images are {test.width}x{test.height} "
                               f"but the train images are {train.width}x{train.height}")
    else:
        test = train.subset([])
    train.cache = test.cache = cache_images
    points = points_rgb = None
    if (root / "points3d.ply").is_file():
        xyz, rgb = load_ply_points(root / "points3d.ply")
        if len(xyz):
            points = torch.tensor(xyz, dtype=torch.float32)
            points_rgb = None if rgb is None else torch.tensor(rgb, dtype=torch.float32)
    return SceneData(train=train, test=test, points=points, points_rgb=points_rgb,
                     scene_scale=compute_scene_scale(train.cameras.viewmats), background=as_background(background),
                     source=Path(path), transform=torch.eye(4), format="blender")
