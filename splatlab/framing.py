"""One "fit the scene" camera for every first picture of a scene.

`splatlab render`'s orbit, the viser viewer's initial camera and the static (Spark) viewer's initial
camera all come from `fit_camera` / `fit_orbit`, so the three open on the same framing.

Two steps:

1. `scene_box`: where the scene is. Trained scenes carry stray splats (floaters, a few Gaussians
   far outside the object) that make min/max bounds useless, and a fixed quantile of the positions
   cuts off thin extremities such as the top of a head. So: opacity-weighted quantiles of the
   positions of the sufficiently opaque Gaussians give a core box; every opaque Gaussian within a
   reach of that core (a quarter of its diagonal) is part of the object, and the box is grown to hold
   them whole (mean +- 2 sigma along each axis). Splats farther out are strays and are ignored.
2. `fit_distance`: how far back. With the camera looking at the box centre from a given direction,
   the smallest distance at which all eight box corners project inside the frame shrunk by a margin
   (closed form: one inequality per corner and image axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .gaussians import Gaussians

FOV_Y_DEG = 50.0  # vertical field of view every viewer opens with
ELEVATION_DEG = 25.0  # look slightly down on the scene (z up)
MARGIN = 0.08  # fraction of the half-frame kept free around the box
VIEWER_ASPECT = 1.0  # a browser window's shape is unknown in advance: fit a square, so any landscape window fits


@dataclass(frozen=True)
class SceneBox:
    """Axis-aligned box (world units) that holds the scene's object, stray splats excluded."""

    lo: np.ndarray  # (3,)
    hi: np.ndarray  # (3,)
    kept: int  # Gaussians inside the box (the object)
    total: int  # Gaussians in the scene

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo

    def corners(self) -> np.ndarray:
        """(8, 3) corners."""
        return np.array([[x, y, z] for x in (self.lo[0], self.hi[0]) for y in (self.lo[1], self.hi[1])
                         for z in (self.lo[2], self.hi[2])], dtype=np.float64)


@dataclass(frozen=True)
class FitCamera:
    """A look-at camera: OpenCV-style pose from `eye` towards `target` with world `up` (z)."""

    eye: np.ndarray  # (3,)
    target: np.ndarray  # (3,)
    fov_y: float  # radians, vertical
    aspect: float  # width / height it was fitted for (wider windows also fit)
    box: SceneBox

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.eye - self.target))

    def viewmat(self) -> torch.Tensor:
        """(4, 4) world-to-camera (OpenCV axes), as `splatlab.cameras.look_at` builds it."""
        from .cameras import look_at

        return look_at(torch.from_numpy(self.eye).float(), torch.from_numpy(self.target).float())


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Quantile `q` of `values` where each value counts with its weight (lower value at a tie)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(values[order][min(i, len(values) - 1)])


def _axis_sigmas(gaussians: Gaussians) -> np.ndarray:
    """(N, 3) standard deviation of each Gaussian along the world axes: sqrt(diag(R S^2 R^T))."""
    w, x, y, z = gaussians.quats.detach().double().unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)
    s2 = gaussians.scales.detach().double() ** 2
    return torch.sqrt((R * R * s2[:, None, :]).sum(-1)).numpy()


def _drawn(gaussians: Gaussians) -> Gaussians:
    """The Gaussians as drawn: a method's plain-3DGS version (hierarchical children are stored as
    residuals, GES bakes its shape into the scales); the raw fields if the method cannot be built."""
    try:
        from .render import method_of

        with torch.no_grad():
            return method_of(gaussians).plain_gaussians(gaussians)
    except Exception:  # noqa: BLE001 - framing must not fail on a scene the render path rejects later
        return gaussians


def scene_box(gaussians: Gaussians, min_opacity: float = 0.2, quantile: float = 0.02, reach: float = 0.25,
              sigmas: float = 2.0) -> SceneBox:
    """Box around the scene's object from opacity-weighted bounds that ignore stray splats.

    `quantile`: the core box spans the `quantile` .. 1 - `quantile` opacity-weighted quantiles of the
    positions of Gaussians with opacity >= `min_opacity` (all Gaussians if none are that opaque).
    `reach`: opaque Gaussians whose centres lie within `reach` x the core's diagonal of the core box
    belong to the object; the box is grown to hold each of them to `sigmas` standard deviations."""
    g = _drawn(gaussians)
    n = len(g)
    if n == 0:
        return SceneBox(-np.ones(3), np.ones(3), 0, 0)
    means = g.means.detach().double().numpy()
    opac = g.opacities.detach().double().numpy()
    finite = np.isfinite(means).all(1) & np.isfinite(opac)
    opaque = finite & (opac >= min_opacity)
    if not opaque.any():
        opaque = finite
    if not opaque.any():
        return SceneBox(-np.ones(3), np.ones(3), 0, n)
    pts, wts = means[opaque], np.maximum(opac[opaque], 1e-6)
    core_lo = np.array([weighted_quantile(pts[:, a], wts, quantile) for a in range(3)])
    core_hi = np.array([weighted_quantile(pts[:, a], wts, 1.0 - quantile) for a in range(3)])
    diag = float(np.linalg.norm(core_hi - core_lo))
    grow = reach * diag
    inside = ((pts >= core_lo - grow) & (pts <= core_hi + grow)).all(1)
    sig = np.nan_to_num(_axis_sigmas(g)[opaque][inside], nan=0.0, posinf=0.0)
    # a huge splat (sky, a background blob) must not blow the box up: at most `grow` per side
    ext = np.minimum(sigmas * sig, max(grow, 1e-9))
    lo = (pts[inside] - ext).min(0)
    hi = (pts[inside] + ext).max(0)
    size = hi - lo
    floor = max(float(size.max()) * 1e-3, 1e-6)  # a flat or single-point scene still gets a box
    pad = np.maximum(floor - size, 0.0) / 2
    return SceneBox(lo - pad, hi + pad, int(inside.sum()), n)


def view_direction(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """Unit vector from the target to the eye on a z-up orbit (same angles as `cameras.orbit`)."""
    el = math.radians(max(-89.0, min(89.0, float(elevation_deg))))
    az = math.radians(float(azimuth_deg))
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def _camera_axes(direction: np.ndarray, up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, down, forward) of a camera looking along -direction (as `cameras.look_at`)."""
    fwd = -np.asarray(direction, dtype=np.float64)
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        right = np.cross(fwd, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    return right, np.cross(fwd, right), fwd


def fit_distance(box: SceneBox, direction: np.ndarray, fov_y: float, aspect: float, margin: float = MARGIN) -> float:
    """Smallest distance from the box centre, along `direction`, at which a camera looking at the
    centre sees every box corner inside the frame shrunk by `margin` of each half-extent.

    Corner p (relative to the centre) in camera axes is (u, v, w); at distance d its depth is w + d,
    and it is in frame when |u| <= tx (w + d) and |v| <= ty (w + d), tx, ty = (1 - margin) tan(half fov)."""
    right, down, fwd = _camera_axes(direction)
    rel = box.corners() - box.center
    u, v, w = rel @ right, rel @ down, rel @ fwd
    ty = (1.0 - margin) * math.tan(fov_y / 2)
    tx = (1.0 - margin) * math.tan(fov_y / 2) * aspect
    need = np.maximum(np.abs(u) / tx, np.abs(v) / ty) - w
    near = 1e-3 * float(np.linalg.norm(box.size))  # every corner strictly in front of the camera
    return float(max(need.max(), (near - w).max(), 1e-6))


def fit_camera(scene: Gaussians | SceneBox, fov_y: float = math.radians(FOV_Y_DEG), aspect: float = VIEWER_ASPECT,
               elevation_deg: float = ELEVATION_DEG, azimuth_deg: float = 0.0, margin: float = MARGIN) -> FitCamera:
    """The camera every viewer opens with: looking at the scene box's centre from (elevation,
    azimuth), just far enough back that the whole box is in a `aspect` frame with `margin` to spare."""
    box = scene if isinstance(scene, SceneBox) else scene_box(scene)
    direction = view_direction(elevation_deg, azimuth_deg)
    d = fit_distance(box, direction, fov_y, aspect, margin)
    return FitCamera(box.center + d * direction, box.center.copy(), float(fov_y), float(aspect), box)


def fit_orbit(scene: Gaussians | SceneBox, n_views: int, width: int, height: int,
              fov_y: float = math.radians(FOV_Y_DEG), elevation_deg: float = ELEVATION_DEG,
              margin: float = MARGIN) -> tuple[torch.Tensor, torch.Tensor, SceneBox]:
    """(viewmats (n,4,4), Ks (n,3,3), box) of a turntable around the scene box's centre: one distance
    for every view (the largest any of them needs), so the whole object stays in frame all the way round."""
    from .cameras import intrinsics, orbit

    box = scene if isinstance(scene, SceneBox) else scene_box(scene)
    aspect = width / height
    elevation_deg = max(-89.0, min(89.0, float(elevation_deg)))  # straight down has no "up" to turn around
    d = max(fit_distance(box, view_direction(elevation_deg, 360.0 * i / n_views), fov_y, aspect, margin)
            for i in range(n_views))
    viewmats = orbit(n_views, d, elevation_deg, tuple(float(c) for c in box.center))
    f = 0.5 * height / math.tan(fov_y / 2)
    K = intrinsics(f, f, width / 2, height / 2)
    return viewmats, K[None].expand(n_views, 3, 3).clone(), box


__all__ = ["SceneBox", "FitCamera", "scene_box", "fit_distance", "fit_camera", "fit_orbit", "view_direction",
           "weighted_quantile", "FOV_Y_DEG", "ELEVATION_DEG", "MARGIN", "VIEWER_ASPECT"]
