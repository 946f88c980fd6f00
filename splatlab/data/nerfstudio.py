"""nerfstudio `transforms.json` -> SceneData.

The file holds camera-to-world poses in OpenGL camera axes (x right, y up, z back), intrinsics
(`fl_x fl_y cx cy w h`, optional `k1 k2 k3 p1 p2`) at the top level or per frame, an optional
`applied_transform` (3x4: the transform already applied to the poses relative to the original
capture frame, e.g. COLMAP's) and an optional `ply_file_path` with a point cloud given in the same
frame as the poses.

The poses are normalised like nerfstudio's default data parser: rotate so the mean camera up
vector is +z, centre on the mean camera position, and scale so the largest absolute camera
position coordinate is 1. `SceneData.transform` is that similarity (transforms.json frame ->
scene); `dataparser_transforms.json` (written into `output_dir` when given) holds
{"transform": 3x4 rotation+translation from the original frame (applied_transform folded in),
"scale": s} so that x_scene = scale * (transform @ [x_original; 1]).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from .scene import (DatasetError, SceneData, as_background, build_views, check_points_finite,
                    compute_scene_scale, default_cache_dir, every_nth_split, one_line, opengl_c2w_to_viewmat,
                    rotation_between, OPENGL_TO_OPENCV)

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "k1", "k2", "k3", "k4", "p1", "p2",
                  "camera_model", "camera_angle_x", "camera_angle_y")


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({one_line(exc)})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level")
    return meta


def frames_of(meta: dict, path: Path) -> list[dict]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DatasetError(f"{path}: no frames (expected a non-empty \"frames\" list)")
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or "file_path" not in fr or "transform_matrix" not in fr:
            raise DatasetError(f"{path}: frame {i} needs \"file_path\" and \"transform_matrix\"")
    return frames


def pose_of(frame: dict, index: int, path: Path) -> np.ndarray:
    try:
        m = np.array(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: frame {index} has a malformed transform_matrix") from None
    if m.shape == (3, 4):
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise DatasetError(f"{path}: frame {index} transform_matrix must be a finite 4x4 (or 3x4) matrix")
    if abs(np.linalg.det(m[:3, :3])) < 1e-12:
        raise DatasetError(f"{path}: frame {index} transform_matrix is singular")
    return m


def auto_orient_and_center(c2w: torch.Tensor) -> torch.Tensor:
    """(3,4) transform rotating the mean camera up (OpenGL +y) onto +z and centring the mean position."""
    up = c2w[:, :3, 1].mean(0)
    if up.norm() < 1e-9:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=c2w.dtype)
    R = rotation_between(up, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).to(c2w.dtype)
    center = c2w[:, :3, 3].mean(0)
    return torch.cat([R, (-R @ center)[:, None]], dim=1)


def load_ply_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        from plyfile import PlyData
    except ImportError:  # pragma: no cover
        raise DatasetError(f"{path}: reading .ply point clouds needs the 'plyfile' package") from None
    if not path.is_file():
        raise DatasetError(f"missing point cloud file {path}")
    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"]
        xyz = np.stack([np.asarray(v["x"]), np.asarray(v["y"]), np.asarray(v["z"])], axis=1).astype(np.float64)
        names = v.data.dtype.names
        rgb = None
        if all(c in names for c in ("red", "green", "blue")):
            rgb = np.stack([np.asarray(v[c]) for c in ("red", "green", "blue")], axis=1).astype(np.float64)
            rgb = rgb / (65535.0 if rgb.max(initial=0) > 255 else 255.0)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"corrupt point cloud {path}: {one_line(exc)}") from None
    check_points_finite(path, xyz, rgb)
    return xyz, rgb


def _intrinsics(frame: dict, meta: dict, index: int, path: Path):
    def get(key, default=None):
        if key in frame:
            return frame[key]
        return meta.get(key, default)

    model = str(get("camera_model", "OPENCV")).upper()
    if model not in ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE"):
        raise DatasetError(f"{path}: camera_model {model} is not supported (use OPENCV or PINHOLE)")
    try:
        w, h = get("w"), get("h")
        size = (int(w), int(h)) if w is not None and h is not None else None
        fx, fy = get("fl_x"), get("fl_y")
        if fx is None and get("camera_angle_x") is not None and size is not None:
            fx = 0.5 * size[0] / math.tan(0.5 * float(get("camera_angle_x")))
        if fy is None and get("camera_angle_y") is not None and size is not None:
            fy = 0.5 * size[1] / math.tan(0.5 * float(get("camera_angle_y")))
        if fx is None and fy is None:
            raise DatasetError(f"{path}: frame {index} has no focal length (fl_x/fl_y)")
        fx = float(fx if fx is not None else fy)
        fy = float(fy if fy is not None else fx)
        cx, cy = get("cx"), get("cy")
        if (cx is None or cy is None) and size is None:
            raise DatasetError(f"{path}: frame {index} needs cx/cy or w/h")
        cx = float(cx) if cx is not None else size[0] / 2.0
        cy = float(cy) if cy is not None else size[1] / 2.0
        dist = [float(get(k, 0.0) or 0.0) for k in ("k1", "k2", "p1", "p2", "k3")]
        k4 = float(get("k4", 0.0) or 0.0)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: frame {index} has malformed intrinsics") from None
    if k4 != 0.0:
        raise DatasetError(f"{path}: distortion coefficient k4 is not supported")
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy, *dist)) or fx <= 0 or fy <= 0:
        raise DatasetError(f"{path}: frame {index} has invalid intrinsics")
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return K, np.array(dist), size


def load_nerfstudio(path, downscale: int = 1, background=(1.0, 1.0, 1.0), output_dir=None,
                    test_every: int = 8, normalize: bool = True, cache_dir=None,
                    cache_images: bool = False) -> SceneData:
    """Load a nerfstudio dataset (folder with transforms.json, or the json file itself)."""
    src = Path(path)
    json_path = src if src.is_file() else src / "transforms.json"
    if not src.exists():
        raise DatasetError(f"{src}: no such file or directory")
    data_dir = json_path.parent
    meta = read_json(json_path)
    frames = frames_of(meta, json_path)
    frames = sorted(enumerate(frames), key=lambda f: str(f[1]["file_path"]))

    c2w, Ks, dists, sizes, paths, names = [], [], [], [], [], []
    for index, fr in frames:
        c2w.append(pose_of(fr, index, json_path))
        K, dist, size = _intrinsics(fr, meta, index, json_path)
        Ks.append(K), dists.append(dist), sizes.append(size)
        p = Path(str(fr["file_path"]))
        paths.append(p if p.is_absolute() else data_dir / p)
        names.append(str(fr["file_path"]))
    c2w_t = torch.tensor(np.stack(c2w), dtype=torch.float64)

    if normalize:
        T = auto_orient_and_center(c2w_t)
        T4 = torch.cat([T, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)], 0)
        moved = T4 @ c2w_t
        extent = moved[:, :3, 3].abs().max().item()
        scale = 1.0 / extent if extent > 1e-12 else 1.0
    else:
        T4 = torch.eye(4, dtype=torch.float64)
        scale = 1.0
    S = torch.diag(torch.tensor([scale, scale, scale, 1.0], dtype=torch.float64)) @ T4  # data -> scene
    new_c2w = S @ c2w_t
    new_c2w[:, :3, :3] /= scale  # keep rotations orthonormal; only positions are scaled
    viewmats = opengl_c2w_to_viewmat(new_c2w).float()

    applied = meta.get("applied_transform")
    A4 = torch.eye(4, dtype=torch.float64)
    if applied is not None:
        try:
            A = np.array(applied, dtype=np.float64)
        except (TypeError, ValueError):
            A = None
        if A is None or A.shape not in ((3, 4), (4, 4)) or not np.all(np.isfinite(A)):
            raise DatasetError(f"{json_path}: applied_transform must be a 3x4 matrix")
        A4[:3, :4] = torch.from_numpy(A[:3, :4])
    if output_dir is not None:
        write_dataparser_transforms(output_dir, (T4 @ A4)[:3], scale)

    points = points_rgb = None
    ply = Path(str(meta["ply_file_path"])) if meta.get("ply_file_path") else None
    if ply is None and (data_dir / "points3d.ply").is_file():  # e.g. from `splatlab triangulate`
        ply = Path("points3d.ply")
    if ply is not None:
        xyz, rgb = load_ply_points(ply if ply.is_absolute() else data_dir / ply)
        if len(xyz):
            xyz_t = torch.tensor(xyz, dtype=torch.float64)
            points = (xyz_t @ S[:3, :3].T + S[:3, 3]).float()
            points_rgb = None if rgb is None else torch.tensor(rgb, dtype=torch.float32)

    dist_t = torch.tensor(np.stack(dists), dtype=torch.float32)
    if cache_dir is None and bool(torch.any(dist_t != 0)):
        cache_dir = default_cache_dir(data_dir)
    views = build_views(paths, names, viewmats, torch.tensor(np.stack(Ks), dtype=torch.float32), sizes,
                        downscale, dist_t, background, Path(cache_dir) if cache_dir else None, cache_images)
    train_idx, test_idx = every_nth_split(len(views), test_every)
    return SceneData(train=views.subset(train_idx), test=views.subset(test_idx), points=points,
                     points_rgb=points_rgb, scene_scale=compute_scene_scale(viewmats[train_idx]),
                     background=as_background(background), source=src, transform=S.float(),
                     format="nerfstudio")


def write_dataparser_transforms(output_dir, transform_3x4, scale: float) -> Path:
    """Write {"transform": 3x4, "scale": s} to `<output_dir>/dataparser_transforms.json`."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "dataparser_transforms.json"
    tmp = out / ".dataparser_transforms.json.tmp"
    tmp.write_text(json.dumps({"transform": torch.as_tensor(transform_3x4).double().tolist(),
                               "scale": float(scale)}, indent=2))
    tmp.replace(target)
    return target


__all__ = ["load_nerfstudio", "write_dataparser_transforms", "auto_orient_and_center", "OPENGL_TO_OPENCV"]
