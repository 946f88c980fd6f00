"""COLMAP sparse models (text and binary) -> SceneData.

Written from COLMAP's documented output formats:

cameras.txt   CAMERA_ID MODEL WIDTH HEIGHT PARAMS...
images.txt    two lines per image: IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME
              then POINTS2D as (X Y POINT3D_ID)* (possibly an empty line)
points3D.txt  POINT3D_ID X Y Z R G B ERROR TRACK as (IMAGE_ID POINT2D_IDX)*

cameras.bin   u64 n; n x [i32 camera_id, i32 model_id, u64 width, u64 height, f64 params[k]]
images.bin    u64 n; n x [i32 image_id, f64 qw qx qy qz, f64 tx ty tz, i32 camera_id,
                          NUL-terminated name, u64 m, m x (f64 x, f64 y, i64 point3D_id)]
points3D.bin  u64 n; n x [u64 id, f64 x y z, u8 r g b, f64 error, u64 t, t x (i32 image_id, i32 idx)]

All little-endian. (q, t) is the world-to-camera pose in the OpenCV camera convention.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .scene import (DatasetError, SceneData, build_views, check_camera, check_points_finite,
                    compute_scene_scale, every_nth_split, as_background, one_line)

# model id -> (name, number of params). Only a subset can be used, all can be parsed.
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8),
    6: ("FULL_OPENCV", 12),
    7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5),
    10: ("THIN_PRISM_FISHEYE", 12),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
MODEL_IDS = {name: (mid, n) for mid, (name, n) in CAMERA_MODELS.items()}
SUPPORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def intrinsics(self) -> tuple[np.ndarray, np.ndarray]:
        """(K (3,3), distortion (k1, k2, p1, p2, k3)) for the supported models."""
        p = [float(v) for v in self.params]
        dist = np.zeros(5)
        if self.model == "SIMPLE_PINHOLE":
            fx = fy = p[0]; cx, cy = p[1], p[2]
        elif self.model == "PINHOLE":
            fx, fy, cx, cy = p[:4]
        elif self.model == "SIMPLE_RADIAL":
            fx = fy = p[0]; cx, cy = p[1], p[2]; dist[0] = p[3]
        elif self.model == "RADIAL":
            fx = fy = p[0]; cx, cy = p[1], p[2]; dist[0], dist[1] = p[3], p[4]
        elif self.model == "OPENCV":
            fx, fy, cx, cy = p[:4]; dist[:4] = p[4:8]
        else:
            raise ValueError(f"unsupported camera model {self.model} (supported: {', '.join(SUPPORTED_MODELS)})")
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        return K, dist


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # (w, x, y, z)
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    def viewmat(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = qvec_to_rotmat(self.qvec)
        m[:3, 3] = self.tvec
        return m


@dataclass
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    xyz: np.ndarray  # (P, 3)
    rgb: np.ndarray  # (P, 3) uint8
    point_ids: np.ndarray  # (P,)
    path: Path


def qvec_to_rotmat(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


# ------------------------------------------------------------------------------------ text

def _text_lines(path: Path):
    """(line number, stripped line) for every non-comment line, blank lines included."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {one_line(exc)}") from None
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s.startswith("#"):
            yield no, s


def read_cameras_text(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for no, line in _text_lines(path):
        if not line:
            continue
        tok = line.split()
        try:
            cid, model, w, h = int(tok[0]), tok[1], int(tok[2]), int(tok[3])
            params = np.array([float(v) for v in tok[4:]])
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{no}: malformed camera line") from None
        if model not in MODEL_IDS:
            raise DatasetError(f"{path}:{no}: unknown camera model {model}")
        if len(params) != MODEL_IDS[model][1]:
            raise DatasetError(f"{path}:{no}: camera model {model} needs {MODEL_IDS[model][1]} params, got {len(params)}")
        cams[cid] = ColmapCamera(cid, model, w, h, params)
    return cams


def _looks_like_image_header(tok: list[str]) -> bool:
    if len(tok) < 10:
        return False
    try:
        int(tok[0]); [float(v) for v in tok[1:8]]; int(tok[8])
    except ValueError:
        return False
    return True


def _floats(tok: list[str]) -> np.ndarray | None:
    try:
        return np.array([float(v) for v in tok], dtype=np.float64)
    except ValueError:
        return None


def read_images_text(path: Path) -> dict[int, ColmapImage]:
    images = {}
    lines = list(_text_lines(path))
    i = 0
    while i < len(lines):
        no, line = lines[i]
        i += 1
        if not line:
            continue
        tok = line.split()
        if not _looks_like_image_header(tok):
            raise DatasetError(f"{path}:{no}: malformed image line")
        iid, cid = int(tok[0]), int(tok[8])
        q = np.array([float(v) for v in tok[1:5]])
        t = np.array([float(v) for v in tok[5:8]])
        name = " ".join(tok[9:])
        xys, ids = np.zeros((0, 2)), np.zeros((0,), dtype=np.int64)
        if i < len(lines):  # the POINTS2D line (may be empty; tolerate it being left out)
            pno, pline = lines[i]
            ptok = pline.split()
            arr = _floats(ptok)
            if arr is not None and len(ptok) % 3 == 0:
                if len(ptok):
                    xys, ids = arr.reshape(-1, 3)[:, :2], arr.reshape(-1, 3)[:, 2].astype(np.int64)
                i += 1
            elif not _looks_like_image_header(ptok):
                raise DatasetError(f"{path}:{pno}: malformed POINTS2D line")
        if np.linalg.norm(q) == 0 or not np.all(np.isfinite(q)) or not np.all(np.isfinite(t)):
            raise DatasetError(f"{path}:{no}: invalid pose for image {name}")
        images[iid] = ColmapImage(iid, q, t, cid, name, xys, ids)
    return images


def read_points3d_text(path: Path):
    ids, xyz, rgb = [], [], []
    for no, line in _text_lines(path):
        if not line:
            continue
        tok = line.split()
        try:
            ids.append(int(tok[0]))
            xyz.append([float(v) for v in tok[1:4]])
            rgb.append([int(v) for v in tok[4:7]])
            float(tok[7])
        except (ValueError, IndexError):
            raise DatasetError(f"{path}:{no}: malformed point line") from None
    return (np.array(ids, dtype=np.int64), np.array(xyz, dtype=np.float64).reshape(-1, 3),
            np.array(rgb, dtype=np.int64).clip(0, 255).astype(np.uint8).reshape(-1, 3))


# ------------------------------------------------------------------------------------ binary

class _Reader:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {one_line(exc)}") from None
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DatasetError(f"{self.path}: truncated or corrupt binary file (ended at byte {len(self.data)})")
        out = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return out

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if count < 0 or self.pos + size > len(self.data):
            raise DatasetError(f"{self.path}: truncated or corrupt binary file (ended at byte {len(self.data)})")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def cstring(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise DatasetError(f"{self.path}: truncated or corrupt binary file (unterminated image name)")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{self.path}: corrupt binary file (image name is not UTF-8)") from None

    def count(self, min_record: int) -> int:
        (n,) = self.take("<Q")
        if n * min_record > len(self.data) - self.pos:
            raise DatasetError(f"{self.path}: truncated or corrupt binary file (claims {n} records)")
        return n

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise DatasetError(f"{self.path}: corrupt binary file ({len(self.data) - self.pos} unexpected trailing bytes)")


def read_cameras_binary(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(path)
    cams = {}
    for _ in range(r.count(24)):
        cid, mid, w, h = r.take("<iiQQ")
        if mid not in CAMERA_MODELS:
            raise DatasetError(f"{path}: corrupt binary file (unknown camera model id {mid})")
        name, n = CAMERA_MODELS[mid]
        params = np.array(r.take(f"<{n}d"))
        cams[cid] = ColmapCamera(cid, name, int(w), int(h), params)
    r.finish()
    return cams


_POINT2D = np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")])


def read_images_binary(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(path)
    images = {}
    for _ in range(r.count(73)):
        vals = r.take("<i7di")
        iid, q, t, cid = vals[0], np.array(vals[1:5]), np.array(vals[5:8]), vals[8]
        name = r.cstring()
        (m,) = r.take("<Q")
        pts = r.array(_POINT2D, m) if m else np.zeros(0, dtype=_POINT2D)
        if np.linalg.norm(q) == 0 or not np.all(np.isfinite(q)) or not np.all(np.isfinite(t)):
            raise DatasetError(f"{path}: corrupt binary file (invalid pose for image {name!r})")
        images[iid] = ColmapImage(iid, q, t, cid, name,
                                  np.stack([pts["x"], pts["y"]], axis=1), pts["id"].astype(np.int64))
    r.finish()
    return images


def read_points3d_binary(path: Path):
    r = _Reader(path)
    n = r.count(43)
    ids = np.zeros(n, dtype=np.int64)
    xyz = np.zeros((n, 3))
    rgb = np.zeros((n, 3), dtype=np.uint8)
    for k in range(n):
        vals = r.take("<Q3d3Bd")
        ids[k], xyz[k], rgb[k] = vals[0], vals[1:4], vals[4:7]
        (t,) = r.take("<Q")
        r.array(np.dtype("<i4"), 2 * t)
    r.finish()
    return ids, xyz, rgb


# ------------------------------------------------------------------------------------ model

MODEL_FILES = ("cameras", "images", "points3D")


def model_format(model_dir: Path) -> str | None:
    """'bin' or 'txt' if `model_dir` holds a sparse model (binary preferred), else None."""
    model_dir = Path(model_dir)
    for ext in ("bin", "txt"):
        if all((model_dir / f"{n}.{ext}").is_file() for n in ("cameras", "images")):
            return ext
    return None


def read_model(model_dir: Path) -> ColmapModel:
    """Read a COLMAP sparse model (binary if present, else text). points3D is optional."""
    model_dir = Path(model_dir)
    ext = model_format(model_dir)
    if ext is None:
        raise DatasetError(f"{model_dir}: no COLMAP model (cameras.bin/images.bin or cameras.txt/images.txt)")
    if ext == "bin":
        cams = read_cameras_binary(model_dir / "cameras.bin")
        images = read_images_binary(model_dir / "images.bin")
        pfile = model_dir / "points3D.bin"
        points = read_points3d_binary(pfile) if pfile.is_file() else None
    else:
        cams = read_cameras_text(model_dir / "cameras.txt")
        images = read_images_text(model_dir / "images.txt")
        pfile = model_dir / "points3D.txt"
        points = read_points3d_text(pfile) if pfile.is_file() else None
    if not cams:
        raise DatasetError(f"{model_dir / f'cameras.{ext}'}: COLMAP model has no cameras")
    if not images:
        raise DatasetError(f"{model_dir / f'images.{ext}'}: COLMAP model has no images")
    for im in images.values():
        if im.camera_id not in cams:
            raise DatasetError(f"{model_dir / f'images.{ext}'}: image {im.name} uses unknown camera id {im.camera_id}")
    if points is None:
        points = (np.zeros(0, dtype=np.int64), np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8))
    ids, xyz, rgb = points
    return ColmapModel(cams, images, xyz, rgb, ids, model_dir)


def find_model_dir(scene: Path) -> Path | None:
    scene = Path(scene)
    for cand in (scene / "sparse" / "0", scene / "sparse", scene / "colmap" / "sparse" / "0", scene):
        if model_format(cand):
            return cand
    return None


def find_images_dir(scene: Path, model_dir: Path) -> Path:
    for cand in (scene / "images", model_dir.parent.parent / "images", model_dir.parent / "images"):
        if cand.is_dir():
            return cand
    return scene / "images"


def load_colmap(path, downscale: int = 1, background=(1.0, 1.0, 1.0), test_every: int = 8,
                images_dir=None, cache_dir=None, cache_images: bool = False) -> SceneData:
    """Load a COLMAP scene folder (`sparse/0`, `sparse` or `colmap/sparse/0` + `images/`).

    Poses are kept in COLMAP's world frame (`transform` = identity). Images of distorted camera
    models are undistorted on load (cached as PNG in `<scene>/.splatlab_cache`). Every
    `test_every`-th image (sorted by name) is held out for test.
    """
    scene = Path(path)
    if not scene.exists():
        raise DatasetError(f"{scene}: no such file or directory")
    model_dir = find_model_dir(scene)
    if model_dir is None:
        raise DatasetError(f"{scene}: no COLMAP sparse model found in sparse/0, sparse or colmap/sparse/0")
    model = read_model(model_dir)
    img_dir = Path(images_dir) if images_dir else find_images_dir(scene, model_dir)

    ordered = sorted(model.images.values(), key=lambda im: im.name)
    viewmats, Ks, dists, sizes, paths, names = [], [], [], [], [], []
    ext = model_format(model_dir)
    for im in ordered:
        cam = model.cameras[im.camera_id]
        try:
            K, dist = cam.intrinsics()
        except ValueError as exc:
            raise DatasetError(f"{model_dir / f'cameras.{ext}'}: camera {cam.id}: {exc}") from None
        check_camera(f"{model_dir / f'cameras.{ext}'}: camera {cam.id}", cam.width, cam.height, K)
        if not np.isfinite(dist).all():
            raise DatasetError(f"{model_dir / f'cameras.{ext}'}: camera {cam.id}: non-finite distortion parameters")
        viewmats.append(im.viewmat())
        Ks.append(K)
        dists.append(dist)
        sizes.append((cam.width, cam.height))
        paths.append(img_dir / im.name)
        names.append(im.name)
    viewmats_t = torch.tensor(np.stack(viewmats), dtype=torch.float32)
    Ks_t = torch.tensor(np.stack(Ks), dtype=torch.float32)
    dist_t = torch.tensor(np.stack(dists), dtype=torch.float32)

    cache_dir = Path(cache_dir) if cache_dir else None
    if cache_dir is None and bool(torch.any(dist_t != 0)):
        from .scene import default_cache_dir
        cache_dir = default_cache_dir(scene)
    views = build_views(paths, names, viewmats_t, Ks_t, sizes, downscale, dist_t, background,
                        cache_dir, cache_images)
    train_idx, test_idx = every_nth_split(len(views), test_every)
    check_points_finite(model_dir / f"points3D.{ext}", model.xyz)
    points = torch.tensor(model.xyz, dtype=torch.float32).reshape(-1, 3)
    points_rgb = torch.tensor(model.rgb, dtype=torch.float32).reshape(-1, 3) / 255.0
    return SceneData(
        train=views.subset(train_idx), test=views.subset(test_idx),
        points=points if len(points) else None, points_rgb=points_rgb if len(points) else None,
        scene_scale=compute_scene_scale(viewmats_t[train_idx]), background=as_background(background),
        source=scene, transform=torch.eye(4), format="colmap")
