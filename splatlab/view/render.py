"""Server-side viewer renders with splatlab's rasterizer: camera conversion, filters, render modes.

Everything here is plain functions of `Gaussians` + a camera, so the viewer app, the live training
viewer, screenshots and the camera-path renderer share them (and they are testable without a browser).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..cameras import Cameras
from ..gaussians import Gaussians
from ..render import render

RENDER_MODES = ("RGB", "Depth", "Alpha", "Gaussian count")


# ------------------------------------------------------------------------------------- cameras

def quat_wxyz_to_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / max(np.linalg.norm(q), 1e-12)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat_wxyz(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    t = np.trace(R)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(max(1.0 + R[i, i] - R[j, j] - R[k, k], 1e-12)) * 2
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (R[k, j] - R[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (R[j, i] + R[i, j]) / s
        q[1 + k] = (R[k, i] + R[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


@dataclass(frozen=True)
class ViewCamera:
    """A pinhole view: camera-to-world pose (OpenCV axes, as viser reports it) + vertical fov."""

    wxyz: tuple[float, float, float, float]
    position: tuple[float, float, float]
    fov_y: float  # radians
    aspect: float  # width / height

    def viewmat(self) -> torch.Tensor:
        c2w = np.eye(4)
        c2w[:3, :3] = quat_wxyz_to_matrix(self.wxyz)
        c2w[:3, 3] = self.position
        return torch.from_numpy(np.linalg.inv(c2w)).float()

    def size_for(self, long_side: int) -> tuple[int, int]:
        long_side = max(8, int(long_side))
        if self.aspect >= 1:
            return long_side, max(8, round(long_side / self.aspect))
        return max(8, round(long_side * self.aspect)), long_side

    def K(self, width: int, height: int) -> torch.Tensor:
        fy = 0.5 * height / math.tan(self.fov_y / 2)
        return torch.tensor([[fy, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]])


def camera_from_viser(cam) -> ViewCamera:
    return ViewCamera(tuple(float(v) for v in cam.wxyz), tuple(float(v) for v in cam.position),
                      float(cam.fov), float(cam.aspect))


# ------------------------------------------------------------------------------------- filters

@dataclass
class ViewFilter:
    """Which Gaussians are shown: opacity / scale thresholds and an axis-aligned crop box."""

    min_opacity: float = 0.0
    max_scale: float = math.inf  # largest axis, world units
    crop_min: tuple[float, float, float] | None = None
    crop_max: tuple[float, float, float] | None = None
    sh_degree_cap: int = 3

    def mask(self, g: Gaussians) -> torch.Tensor:
        with torch.no_grad():
            keep = torch.ones(len(g), dtype=torch.bool)
            if self.min_opacity > 0:
                keep &= g.opacities >= self.min_opacity
            if math.isfinite(self.max_scale):
                keep &= g.scales.max(dim=1).values <= self.max_scale
            if self.crop_min is not None and self.crop_max is not None:
                lo, hi = torch.tensor(self.crop_min), torch.tensor(self.crop_max)
                keep &= ((g.means >= lo) & (g.means <= hi)).all(dim=1)
        return keep

    def is_identity(self) -> bool:
        return self.min_opacity <= 0 and not math.isfinite(self.max_scale) and self.crop_min is None


@dataclass
class RenderSet:
    """The shown Gaussians (filtered, detached; computed once per filter/scene change).

    Server-side renders go through the one render path with the scene's method; the browser-side
    splats (viser draws plain Gaussians) use `plain`, the method's closest plain-3DGS version.
    """

    gaussians: Gaussians
    sh_degree: int
    total: int = 0  # Gaussians before filtering
    extra: dict = field(default_factory=dict)
    _plain: Gaussians | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.gaussians)

    @staticmethod
    def build(g: Gaussians, flt: ViewFilter | None = None) -> "RenderSet":
        flt = flt or ViewFilter()
        with torch.no_grad():
            keep = flt.mask(g)
            shown = g.subset(keep) if not bool(keep.all()) else Gaussians.from_fields(g.detached_fields(), g.method)
            degree = max(0, min(g.sh_degree, int(flt.sh_degree_cap)))
            return RenderSet(shown, degree, len(g))

    @property
    def plain(self) -> Gaussians:
        if self._plain is None:
            from ..render import method_of
            with torch.no_grad():
                self._plain = method_of(self.gaussians).plain_gaussians(self.gaussians)
        return self._plain

    @property
    def means(self) -> torch.Tensor:
        return self.gaussians.means.detach()

    @property
    def opacities(self) -> torch.Tensor:
        return self.plain.opacities.detach()

    def covariances(self) -> np.ndarray:
        """(N,3,3) world covariances R diag(s^2) R^T for viser's splat node."""
        q = self.plain.quats.detach()
        w, x, y, z = q.unbind(-1)
        R = torch.stack([
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)
        M = R * self.plain.scales.detach()[:, None, :]
        return (M @ M.transpose(1, 2)).numpy().astype(np.float32)

    def dc_rgb(self) -> np.ndarray:
        from ..gaussians import SH_C0
        return (self.plain.params["sh0"].detach()[:, 0] * SH_C0 + 0.5).clamp(0, 1).numpy().astype(np.float32)


# ------------------------------------------------------------------------------------- colour maps

_TURBO_STOPS = np.array([
    [0.190, 0.072, 0.232], [0.275, 0.408, 0.859], [0.153, 0.680, 0.938], [0.180, 0.896, 0.656],
    [0.560, 0.990, 0.285], [0.883, 0.864, 0.220], [0.992, 0.574, 0.153], [0.868, 0.242, 0.052],
    [0.480, 0.016, 0.011]])


def colormap(values: np.ndarray) -> np.ndarray:
    """Turbo-like map of values in [0, 1] to RGB float32 (piecewise-linear through 9 stops)."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_TURBO_STOPS) - 1)
    i = np.minimum(v.astype(np.int64), len(_TURBO_STOPS) - 2)
    t = (v - i)[..., None]
    return (_TURBO_STOPS[i] * (1 - t) + _TURBO_STOPS[i + 1] * t).astype(np.float32)


def count_per_pixel(means2d: np.ndarray, radii: np.ndarray, width: int, height: int) -> np.ndarray:
    """How many Gaussians' screen-space 3-sigma boxes cover each pixel (2-D difference array)."""
    visible = (radii > 0).all(-1)
    m, r = means2d[visible], radii[visible]
    x0 = np.clip(np.floor(m[:, 0] - r[:, 0]).astype(np.int64), 0, width)
    x1 = np.clip(np.ceil(m[:, 0] + r[:, 0]).astype(np.int64), 0, width)
    y0 = np.clip(np.floor(m[:, 1] - r[:, 1]).astype(np.int64), 0, height)
    y1 = np.clip(np.ceil(m[:, 1] + r[:, 1]).astype(np.int64), 0, height)
    ok = (x1 > x0) & (y1 > y0)
    x0, x1, y0, y1 = x0[ok], x1[ok], y0[ok], y1[ok]
    diff = np.zeros((height + 1, width + 1), np.int64)
    np.add.at(diff, (y0, x0), 1)
    np.add.at(diff, (y0, x1), -1)
    np.add.at(diff, (y1, x0), -1)
    np.add.at(diff, (y1, x1), 1)
    return diff.cumsum(0).cumsum(1)[:height, :width]


# ------------------------------------------------------------------------------------- rendering

def render_image(rs: RenderSet, camera: ViewCamera, width: int, height: int, mode: str = "RGB",
                 background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(H, W, 3) float32 image in [0, 1] of the shown Gaussians in one of `RENDER_MODES`."""
    bg = np.asarray(background, dtype=np.float32)
    if len(rs) == 0:
        return np.broadcast_to(bg, (height, width, 3)).copy()
    cameras = Cameras(camera.viewmat()[None], camera.K(width, height)[None], width, height)
    with torch.no_grad():
        if mode == "RGB":
            out = render(rs.gaussians, cameras, sh_degree=rs.sh_degree, background=torch.from_numpy(bg))
            return out.images[0].clamp(0, 1).numpy()
        if mode in ("Depth", "Alpha"):
            out = render(rs.gaussians, cameras, sh_degree=0, render_mode="ED")
            a = out.alphas[0, ..., 0].numpy()
            if mode == "Alpha":
                return np.repeat(a[..., None], 3, axis=-1).astype(np.float32)
            depth = out.images[0, ..., 0].numpy()
            solid = a > 0.5
            if solid.any():
                lo, hi = np.percentile(depth[solid], [1, 99])
            else:
                lo, hi = 0.0, 1.0
            d = colormap((depth - lo) / max(hi - lo, 1e-6))
            return (d * a[..., None] + bg * (1 - a[..., None])).astype(np.float32)
        if mode == "Gaussian count":
            meta = render(rs.gaussians, cameras, sh_degree=0, render_mode="D").meta
            counts = count_per_pixel(meta.means2d[0].numpy(), meta.radii[0].numpy(), width, height)
            hi = max(np.percentile(counts, 99.5), 1.0)
            heat = colormap(np.log1p(counts) / np.log1p(hi))
            heat[counts == 0] = bg
            return heat
    raise ValueError(f"unknown render mode {mode!r}; choose one of {', '.join(RENDER_MODES)}")


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png_atomic(img: np.ndarray, path: str) -> str:
    from ..render.cli import save_png

    import os

    save_png(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)), path)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp's 0600 is not what a user expects of a screenshot
    return path


def default_view(rs: RenderSet, fov_y: float = math.radians(50), aspect: float = 4 / 3,
                 elevation_deg: float = 25.0, azimuth_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(eye, target) framing the central 90% of the Gaussians from a z-up orbit position (the same
    framing as `splatlab render`); a scene no camera can frame (`FramingError`) gets a view of the
    origin instead, from where the user can navigate."""
    from ..cameras import FramingError, frame_points

    fov = min(fov_y, 2 * math.atan(math.tan(fov_y / 2) * aspect))
    try:
        center, dist = frame_points(rs.means, fov) if len(rs) else (torch.zeros(3, dtype=torch.float64), 3.0)
    except FramingError:
        center, dist = torch.zeros(3, dtype=torch.float64), 3.0
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    eye = center.numpy() + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return eye.astype(np.float64), center.numpy().astype(np.float64)


def look_at_camera(eye, target, fov_y: float, aspect: float, up=(0.0, 0.0, 1.0)) -> ViewCamera:
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-8:
        right = np.cross(fwd, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd], axis=1)
    return ViewCamera(tuple(matrix_to_quat_wxyz(R)), tuple(eye), fov_y, aspect)
