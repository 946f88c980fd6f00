"""One dataset abstraction that every parser returns.

A `SceneData` holds a train and a test split (`Views`), an optional sparse point cloud and a few
scene facts (scale, background, the world normalisation that was applied). Images are only read
when asked for (`Views.load_image(i)`), optionally cached in memory.

Conventions:
* cameras are OpenCV (x right, y down, z forward), world-to-camera `viewmats`, pixel centres at
  +0.5 (the COLMAP convention: pixel (row i, col j) is centred at (j + 0.5, i + 0.5));
* `transform` (4,4) maps the dataset's own world coordinates to the scene's:
  x_scene = transform @ x_data (identity when no normalisation was applied);
* every split shares one image width/height; datasets mixing image sizes are rejected.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from splatlab.cameras import Cameras


class DatasetError(ValueError):
    """Bad or unreadable dataset; the message is one line and names the offending file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def one_line(exc: BaseException) -> str:
    """An exception's message squeezed onto one line."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# ------------------------------------------------------------------------------------ images

def _open_header(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header, or DatasetError."""
    if not path.is_file():
        raise DatasetError(f"missing image file {path}")
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        raise DatasetError(f"unreadable image {path}: {one_line(exc)}") from None


def _decode(path: Path) -> np.ndarray:
    """Decode an image file into float32 (H, W, 3) or (H, W, 4) in [0, 1]."""
    if not path.is_file():
        raise DatasetError(f"missing image file {path}")
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                im.mode == "P" and "transparency" in im.info)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                return np.repeat(arr[..., None], 3, axis=2)
            if im.mode == "F":
                arr = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
                return np.repeat(arr[..., None], 3, axis=2)
            im = im.convert("RGBA" if has_alpha else "RGB")
            return np.asarray(im, dtype=np.float32) / 255.0
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"corrupt or truncated image {path}: {one_line(exc)}") from None


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    src = arr.astype(np.float32).copy()
    if src.shape[2] == 4:  # resize premultiplied colour so transparent pixels do not bleed
        src[..., :3] *= src[..., 3:4]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(src[..., c])).resize(
        (width, height), Image.Resampling.BICUBIC)) for c in range(src.shape[2])]
    out = np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)
    if out.shape[2] == 4:
        a = out[..., 3:4]
        out[..., :3] = np.where(a > 1e-6, np.clip(out[..., :3] / np.maximum(a, 1e-6), 0.0, 1.0), 0.0)
    return out


def distort_normalized(x: np.ndarray, y: np.ndarray, dist: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Apply the OpenCV/COLMAP radial-tangential model to normalised camera coordinates.

    `dist` = (k1, k2, p1, p2, k3):
    r2 = x^2 + y^2, radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3,
    x_d = x radial + 2 p1 x y + p2 (r2 + 2 x^2),  y_d = y radial + p1 (r2 + 2 y^2) + 2 p2 x y.
    """
    k1, k2, p1, p2, k3 = (float(v) for v in dist)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def undistort_array(arr: np.ndarray, K: np.ndarray, dist: Sequence[float]) -> np.ndarray:
    """Undistort an image (H, W, C) taken with pinhole `K` plus distortion `dist` (k1, k2, p1, p2, k3).

    The output is a pinhole image with the same K and size: each output pixel centre is mapped
    through the forward distortion model into the input image and sampled bilinearly (pixels
    falling outside the input are black / transparent).
    """
    h, w = arr.shape[:2]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u, v = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
    xd, yd = distort_normalized((u - cx) / fx, (v - cy) / fy, dist)
    # continuous image coordinates -> array indices (pixel centres at +0.5)
    sx = fx * xd + cx - 0.5
    sy = fy * yd + cy - 0.5
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    ax = (sx - x0)[..., None]
    ay = (sy - y0)[..., None]
    out = np.zeros((h, w, arr.shape[2]), dtype=np.float64)
    for dy, dx, wgt in ((0, 0, (1 - ax) * (1 - ay)), (0, 1, ax * (1 - ay)),
                        (1, 0, (1 - ax) * ay), (1, 1, ax * ay)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        vals = arr[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        out += np.where(ok[..., None], vals * wgt, 0.0)
    return out.astype(np.float32)


def downscaled_path(path: Path, factor: int) -> Path:
    """`<dir>/<name>` -> `<dir>_<factor>/<name>` (the images_2/, images_4/ convention)."""
    return path.parent.parent / f"{path.parent.name}_{factor}" / path.name


def default_cache_dir(scene_dir: Path) -> Path:
    """`<scene>/.splatlab_cache` if writable, else a per-scene folder under the system temp dir."""
    preferred = Path(scene_dir) / ".splatlab_cache"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        probe = preferred / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return preferred
    except OSError:
        digest = hashlib.sha1(str(Path(scene_dir).resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "splatlab_cache" / digest


# ------------------------------------------------------------------------------------ views

@dataclass
class Views:
    """One split: cameras + the image files they were taken with.

    `paths[i]` is the file actually read (possibly from an `images_N/` folder); it is resized to
    (width, height) on the fly if needed and, when `distortion` is given, undistorted with
    `cameras.Ks[i]` (undistorted images are cached as PNG files in `cache_dir`).
    """

    cameras: Cameras
    paths: list[Path]
    names: list[str]
    distortion: Tensor | None = None  # (C, 5) k1 k2 p1 p2 k3, or None when all pinhole
    background: Tensor = field(default_factory=lambda: torch.ones(3))
    cache: bool = False  # keep decoded images in memory
    cache_dir: Path | None = None  # where undistorted images are written
    _memory: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.paths = [Path(p) for p in self.paths]
        if not (len(self.paths) == len(self.names) == len(self.cameras)):
            raise ValueError("Views need as many paths and names as cameras")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def width(self) -> int:
        return self.cameras.width

    @property
    def height(self) -> int:
        return self.cameras.height

    def subset(self, indices: Sequence[int]) -> "Views":
        idx = list(indices)
        t = torch.as_tensor(idx, dtype=torch.long)
        # image ids number the images of the new split (what per-view parameters are indexed by)
        c = self.cameras
        pick = lambda v: None if v is None else v[t]  # noqa: E731  (times / physical camera ids follow)
        cams = Cameras(c.viewmats[t], c.Ks[t], self.width, self.height, None, pick(c.camera_ids),
                       pick(c.times)).with_ids()
        return Views(cams, [self.paths[i] for i in idx], [self.names[i] for i in idx],
                     None if self.distortion is None else self.distortion[t],
                     self.background, self.cache, self.cache_dir)

    # -- loading ---------------------------------------------------------------------------

    def _needs_undistort(self, i: int) -> bool:
        return self.distortion is not None and bool(torch.any(self.distortion[i] != 0))

    def _cache_file(self, i: int) -> Path:
        K = self.cameras.Ks[i].double().numpy()
        key = "|".join([str(self.paths[i].resolve()), f"{self.width}x{self.height}",
                        ",".join(f"{v:.9g}" for v in K[:2].ravel()),
                        ",".join(f"{v:.9g}" for v in self.distortion[i].double().tolist())])
        try:
            key += f"|{self.paths[i].stat().st_mtime_ns}|{self.paths[i].stat().st_size}"
        except OSError:
            pass
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        cache_dir = self.cache_dir or default_cache_dir(self.paths[i].parent)
        return cache_dir / "undistorted" / f"{Path(self.names[i]).stem}-{digest}.png"

    def _load_raw(self, i: int) -> np.ndarray:
        """float32 (H, W, 3|4), resized and undistorted, not composited."""
        if self._needs_undistort(i):
            cached = self._cache_file(i)
            if cached.is_file():
                try:
                    arr = _decode(cached)
                    if arr.shape[:2] == (self.height, self.width):
                        return arr
                except DatasetError:
                    pass  # broken cache entry: recompute it
        arr = _decode(self.paths[i])
        arr = _resize(arr, self.width, self.height)
        if self._needs_undistort(i):
            arr = undistort_array(arr, self.cameras.Ks[i].double().numpy(), self.distortion[i].tolist())
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
                Image.fromarray(np.round(arr * 255).clip(0, 255).astype(np.uint8)).save(tmp, format="PNG")
                os.replace(tmp, cached)
            except OSError:
                pass  # caching is best effort
        return arr

    def load(self, i: int, composite: bool = True) -> tuple[Tensor, Tensor | None]:
        """Image i as (rgb (H,W,3), alpha (H,W,1) or None), float32 in [0, 1].

        With `composite` (default) RGBA images are blended over `background`; otherwise rgb is
        the raw colour channels.
        """
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} views")
        arr = self._memory.get(i)
        if arr is None:
            arr = torch.from_numpy(self._load_raw(i))
            if self.cache:
                self._memory[i] = arr
        rgb = arr[..., :3]
        alpha = arr[..., 3:4] if arr.shape[-1] == 4 else None
        if alpha is not None and composite:
            rgb = rgb * alpha + self.background.to(rgb) * (1.0 - alpha)
        return rgb.contiguous(), (None if alpha is None else alpha.contiguous())

    def load_image(self, i: int) -> Tensor:
        """Image i as float32 (H, W, 3) in [0, 1], RGBA composited over `background`."""
        return self.load(i)[0]

    def load_alpha(self, i: int) -> Tensor | None:
        return self.load(i)[1]

    def clear_cache(self) -> None:
        self._memory.clear()

    def validate(self) -> None:
        """Decode every image file (not cached); DatasetError on the first unreadable one."""
        for p in self.paths:
            arr = _decode(p)
            if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
                raise DatasetError(f"unreadable image {p}: empty image")


# ------------------------------------------------------------------------------------ scene

@dataclass
class SceneData:
    train: Views
    test: Views
    points: Tensor | None  # (P, 3) float32, scene coordinates
    points_rgb: Tensor | None  # (P, 3) float32 in [0, 1]
    scene_scale: float
    background: Tensor  # (3,) float32 in [0, 1]
    source: Path
    transform: Tensor  # (4, 4) data world -> scene world (identity when none)
    format: str = ""

    @property
    def width(self) -> int:
        return self.train.width

    @property
    def height(self) -> int:
        return self.train.height

    def validate(self) -> None:
        """Check every image of both splits can be decoded (DatasetError naming the file)."""
        self.train.validate()
        self.test.validate()


def compute_scene_scale(viewmats: Tensor) -> float:
    """1.1 x the largest distance of a camera centre from the mean centre (1.0 if degenerate)."""
    if len(viewmats) == 0:
        return 1.0
    centers = torch.linalg.inv(viewmats.double())[:, :3, 3]
    radius = (centers - centers.mean(0)).norm(dim=1).max().item()
    return 1.1 * radius if radius > 1e-8 else 1.0


def as_background(background) -> Tensor:
    bg = torch.as_tensor(background if background is not None else (1.0, 1.0, 1.0), dtype=torch.float32).flatten()
    if bg.numel() == 1:
        bg = bg.repeat(3)
    if bg.numel() != 3:
        raise ValueError(f"background must be 3 values, got {tuple(bg.tolist())}")
    if bg.max() > 1.0:  # allow 0-255 colours
        bg = bg / 255.0
    return bg


def build_views(paths: Sequence[Path], names: Sequence[str], viewmats: Tensor, Ks: Tensor,
                sizes: Sequence[tuple[int, int] | None], downscale: int = 1,
                distortion: Tensor | None = None, background=None, cache_dir: Path | None = None,
                cache: bool = False) -> Views:
    """Check the image files and make one `Views` at a common size.

    `Ks[i]` is valid at `sizes[i]` = (width, height) (None: the file's own size). With
    `downscale` > 1, `<dir>_<downscale>/<name>` files are used when all of them exist, otherwise
    images are resized on the fly to round(size / downscale). Intrinsics follow the actual size.
    Raises DatasetError for missing/unreadable files or mismatched sizes.
    """
    paths = [Path(p) for p in paths]
    if downscale < 1 or int(downscale) != downscale:
        raise DatasetError(f"downscale must be a positive integer, got {downscale}")
    downscale = int(downscale)
    native = [_open_header(p) for p in paths]  # checks existence + header of the originals
    sources = paths
    use_folder = False
    if downscale > 1 and paths:
        candidates = [downscaled_path(p, downscale) for p in paths]
        if all(c.is_file() for c in candidates):
            sources, use_folder = candidates, True
    Ks = Ks.clone().float()
    target: list[tuple[int, int]] = []
    for i, p in enumerate(paths):
        declared = sizes[i] or native[i]
        dw, dh = declared
        check_camera(f"camera of image {p}", dw, dh, Ks[i])
        nw, nh = native[i]
        if abs(nw / dw - nh / dh) > 0.01 * max(nw / dw, nh / dh):
            raise DatasetError(f"image {p} is {nw}x{nh} but its camera is {dw}x{dh} (different aspect ratio)")
        if use_folder:
            tw, th = _open_header(sources[i])
        else:
            tw, th = max(1, round(nw / downscale)), max(1, round(nh / downscale))
        Ks[i, 0, :] *= tw / dw
        Ks[i, 1, :] *= th / dh
        target.append((tw, th))
    if target:
        w0, h0 = target[0]
        for i, (tw, th) in enumerate(target):
            if (tw, th) != (w0, h0):
                raise DatasetError(
                    f"images have different sizes: {sources[i]} is {tw}x{th} but {sources[0]} is {w0}x{h0}")
    else:
        w0, h0 = 1, 1
    cams = Cameras(viewmats.float().reshape(-1, 4, 4), Ks.reshape(-1, 3, 3), int(w0), int(h0)).with_ids()
    if distortion is not None and not bool(torch.any(distortion != 0)):
        distortion = None
    return Views(cams, list(sources), list(names), distortion, as_background(background), cache, cache_dir)


def every_nth_split(n: int, every: int = 8) -> tuple[list[int], list[int]]:
    """Indices (train, test) holding out every `every`-th item (0, 8, 16, ...) for test."""
    if every <= 0:
        return list(range(n)), []
    test = [i for i in range(n) if i % every == 0]
    train = [i for i in range(n) if i % every != 0]
    if not train:  # tiny datasets: train on everything rather than nothing
        train = list(range(n))
    return train, test


def rotation_between(a: Tensor, b: Tensor) -> Tensor:
    """(3,3) rotation taking unit vector a onto unit vector b."""
    a = a.double() / a.double().norm()
    b = b.double() / b.double().norm()
    v = torch.linalg.cross(a, b)
    c = torch.dot(a, b).item()
    if c < -1 + 1e-10:  # opposite: rotate by pi around any axis orthogonal to a
        axis = torch.linalg.cross(a, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
        if axis.norm() < 1e-6:
            axis = torch.linalg.cross(a, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
        axis = axis / axis.norm()
        return 2 * torch.outer(axis, axis) - torch.eye(3, dtype=torch.float64)
    vx = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + vx + vx @ vx / (1 + c)


OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def opengl_c2w_to_viewmat(c2w: Tensor) -> Tensor:
    """(N,4,4) OpenGL camera-to-world (x right, y up, z back) -> OpenCV world-to-camera."""
    c2w = c2w.double()
    if c2w.shape[-2] == 3:
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(*c2w.shape[:-2], 1, 4)
        c2w = torch.cat([c2w, bottom], dim=-2)
    return torch.linalg.inv(c2w @ OPENGL_TO_OPENCV)


def check_points_finite(path, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
    """DatasetError naming `path` when a point cloud holds NaN or infinite positions or colours
    (initialisation would otherwise fail deep inside, after the run folder exists)."""
    for what, values in (("positions", xyz), ("colours", rgb)):
        if values is None or not len(values):
            continue
        bad = ~np.isfinite(np.asarray(values, dtype=np.float64).reshape(len(values), -1)).all(axis=1)
        if bad.any():
            raise DatasetError(f"{path}: point cloud holds non-finite {what} in {int(bad.sum())} of {len(values)} "
                               f"points (first at index {int(np.flatnonzero(bad)[0])})")


def check_camera(where, width: int, height: int, K: np.ndarray | Tensor) -> None:
    """DatasetError naming `where` for a camera no image can be taken with: a size below 1x1, or
    focal lengths that are not positive and finite, or a non-finite principal point."""
    K = np.asarray(K, dtype=np.float64)
    if int(width) < 1 or int(height) < 1:
        raise DatasetError(f"{where}: camera size {width}x{height} must be at least 1x1 pixels")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
        raise DatasetError(f"{where}: invalid intrinsics fx={fx:g} fy={fy:g} cx={cx:g} cy={cy:g} "
                           "(focal lengths must be positive, all values finite)")


def finite_or_error(values: Tensor, what: str) -> None:
    if not bool(torch.isfinite(values).all()):
        raise DatasetError(f"{what} contains non-finite values")


__all__ = ["DatasetError", "Views", "SceneData", "build_views", "check_camera", "check_points_finite",
           "compute_scene_scale", "every_nth_split", "undistort_array", "distort_normalized", "rotation_between",
           "opengl_c2w_to_viewmat"]
