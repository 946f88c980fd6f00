"""One "fit the scene" camera for every first picture of a scene.

`splatlab render`'s orbit, the viser viewer's initial camera and the static (Spark) viewer's initial
camera all come from `fit_camera` / `fit_orbit`, so the three open on the same framing.

Two steps:

1. `scene_box`: what the object is. Trained scenes carry stray splats (floaters, a few Gaussians
   far outside the object) that make min/max bounds useless, and a fixed quantile of the positions
   cuts off thin extremities such as the top of a head. So: weighted quantiles of the positions of
   the sufficiently opaque Gaussians give a core box; every opaque Gaussian within a reach of that
   core (a quarter of its diagonal) is part of the object, as a ball of 2 standard deviations around
   its centre. Splats farther out are strays and are ignored. The weight is opacity / scale^2: fine
   splats are where the captured detail is, while floaters and the background of an unbounded scene
   (sky, far ground: a third of the garden's opaque splats, 10-500 units out) are coarse. With the
   opacity alone the garden's box is 450 units wide; with scale^2 it is 24 (the statue's surroundings)
   and an object whose parts differ in splat size by up to ~6x keeps them all (scale^3: ~3x).
2. `fit_view`: where the camera goes. For a viewing direction, the camera position at which every
   object ball lies inside the frame shrunk by a margin, as close as possible and centred (closed
   form: each image side is a plane through the camera, one inequality per ball and side).
   `fit_distance` is the same for a camera that looks at a given point (the turntable's centre).
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
    points: np.ndarray | None = None  # (K, 3) centres of the object's Gaussians (None: the box corners)
    radii: np.ndarray | None = None  # (K,) their extent (2 sigma of the largest axis)

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

    def balls(self) -> tuple[np.ndarray, np.ndarray]:
        """(centres (K, 3), radii (K,)) that must be in frame: the object's Gaussians, or the corners."""
        if self.points is None or len(self.points) == 0:
            return self.corners(), np.zeros(8)
        return self.points, self.radii if self.radii is not None else np.zeros(len(self.points))


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


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float | np.ndarray) -> float | np.ndarray:
    """Quantile(s) `q` of `values` where each value counts with its weight (lower value at a tie)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    i = np.searchsorted(cum, np.asarray(q) * cum[-1], side="left")
    out = values[order][np.minimum(i, len(values) - 1)]
    return float(out) if np.ndim(out) == 0 else out.astype(np.float64)


FENCE = 3.0  # interquartile ranges beyond the quartiles that still count as the object's core
QUANTILE_SAMPLE = 200_000  # the core box's quantiles come from at most this many splats (a fixed sample)


def _axis_sigmas(gaussians: Gaussians, index: np.ndarray) -> np.ndarray:
    """(len(index), 3) standard deviation of Gaussians `index` along the world axes: sqrt(diag(R S^2 R^T))."""
    index = torch.from_numpy(np.asarray(index, dtype=np.int64))
    w, x, y, z = gaussians.quats.detach()[index].double().unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(-1, 3, 3)
    s2 = gaussians.scales.detach()[index].double() ** 2
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
              sigmas: float = 2.0, detail_power: float = 2.0) -> SceneBox:
    """Box around the scene's object from weighted bounds (opacity, detail) that ignore stray splats.

    `quantile`: the core box spans the `quantile` .. 1 - `quantile` weighted quantiles of the
    positions of Gaussians with opacity >= `min_opacity` (all Gaussians if none are that opaque),
    each weighted by opacity / scale^`detail_power` (scale: geometric mean of its three axes).
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
    scale = np.exp(g.params["scales"].detach().double().numpy().mean(1))  # geometric mean of the 3 axes
    scale = np.where(np.isfinite(scale), scale, np.inf)
    pts = means[opaque]
    wts = np.maximum(opac[opaque], 1e-6) / np.maximum(scale[opaque], 1e-12) ** detail_power
    wts = np.where(np.isfinite(wts), wts, 0.0)
    if not (wts > 0).any():
        wts = np.ones(len(pts))
    sample = np.arange(len(pts))
    if len(pts) > QUANTILE_SAMPLE:  # sorting millions of splats for a 2 % quantile is wasted time
        sample = np.random.default_rng(0).choice(len(pts), QUANTILE_SAMPLE, replace=False)
    qs = np.array([weighted_quantile(pts[sample, a], wts[sample], [quantile, 0.25, 0.75, 1.0 - quantile])
                   for a in range(3)])
    # Tukey-style fences: in a small scene the outer quantiles are its extreme splats, so one diverged
    # splat would span the core; a splat farther than FENCE interquartile ranges out is a stray
    iqr = qs[:, 2] - qs[:, 1]
    iqr = np.maximum(iqr, 0.25 * iqr.max())
    core_lo = np.maximum(qs[:, 0], qs[:, 1] - FENCE * iqr)
    core_hi = np.minimum(qs[:, 3], qs[:, 2] + FENCE * iqr)
    diag = float(np.linalg.norm(core_hi - core_lo))
    grow = reach * diag
    inside = ((pts >= core_lo - grow) & (pts <= core_hi + grow)).all(1)
    sig = np.nan_to_num(_axis_sigmas(g, np.flatnonzero(opaque)[inside]), nan=0.0, posinf=0.0)
    # a huge splat (sky, a background blob) must not blow the object up: at most `grow` per side
    ext = np.minimum(sigmas * sig, max(grow, 1e-9))
    lo = (pts[inside] - ext).min(0)
    hi = (pts[inside] + ext).max(0)
    size = hi - lo
    # a flat or single-point scene still gets a box, wide enough to stay distinct in float32 far out
    floor = max(float(size.max()) * 1e-3, 1e-6, 1e-5 * float(np.abs(lo).max()), 1e-5 * float(np.abs(hi).max()))
    pad = np.maximum(floor - size, 0.0) / 2
    return SceneBox(lo - pad, hi + pad, int(inside.sum()), n, pts[inside], ext.max(1))


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


def _half_tans(fov_y: float, aspect: float, margin: float) -> tuple[float, float]:
    """tan of the half-angles (x, y) of the frame shrunk by `margin`."""
    ty = (1.0 - margin) * math.tan(fov_y / 2)
    return ty * aspect, ty


def _min_distance(box: SceneBox) -> float:
    """A camera this far from the target is still distinct from it in float32 (a one-point scene far out)."""
    return max(1e-6, 1e-4 * float(np.abs(box.center).max()))


def fit_distance(box: SceneBox, direction: np.ndarray, fov_y: float, aspect: float, margin: float = MARGIN,
                 target: np.ndarray | None = None) -> float:
    """Smallest distance from `target` (default: the box centre), along `direction`, at which a camera
    looking at `target` has every object ball inside the frame shrunk by `margin` of each half-extent.

    A ball (centre p - target = (u, v, w) in camera axes, radius r) at camera distance d is inside the
    side plane x = tx z when (tx (w + d) - |u|) / sqrt(1 + tx^2) >= r, i.e. d >= (|u| + r sqrt(1 + tx^2)) / tx - w."""
    right, down, fwd = _camera_axes(direction)
    target = box.center if target is None else np.asarray(target, dtype=np.float64)
    points, radii = box.balls()
    rel = points - target
    u, v, w = rel @ right, rel @ down, rel @ fwd
    tx, ty = _half_tans(fov_y, aspect, margin)
    need = np.maximum((np.abs(u) + radii * math.hypot(1, tx)) / tx, (np.abs(v) + radii * math.hypot(1, ty)) / ty) - w
    near = 1e-3 * float(np.linalg.norm(box.size))  # every ball strictly in front of the camera
    return float(max(need.max(), (near + radii - w).max(), _min_distance(box)))


def fit_view(box: SceneBox, direction: np.ndarray, fov_y: float, aspect: float,
             margin: float = MARGIN) -> tuple[np.ndarray, float]:
    """(target, distance) of the camera looking along -`direction` that has every object ball in the
    frame shrunk by `margin`, centred and as close as possible; `target` is on the view axis at the
    depth of the box centre (where orbiting turns around).

    With the camera at (a, b, c) in camera axes, a ball (u, v, w, r) is inside the left and right
    sides when a - tx c >= u - tx w + r k and a + tx c <= u + tx w - r k (k = sqrt(1 + tx^2)): with A
    the largest left-hand and B the smallest right-hand bound, a = (A + B) / 2 centres the balls and
    c = (B - A) / (2 tx) is the closest position; the same for y, and the farther of the two wins."""
    right, down, fwd = _camera_axes(direction)
    points, radii = box.balls()
    rel = points - box.center
    u, v, w = rel @ right, rel @ down, rel @ fwd
    tx, ty = _half_tans(fov_y, aspect, margin)
    kx, ky = math.hypot(1, tx), math.hypot(1, ty)
    A, B = (u - tx * w + radii * kx).max(), (u + tx * w - radii * kx).min()
    C, D = (v - ty * w + radii * ky).max(), (v + ty * w - radii * ky).min()
    c = min((B - A) / (2 * tx), (D - C) / (2 * ty))
    near = 1e-3 * float(np.linalg.norm(box.size))
    c = min(c, float((w - radii).min()) - near, -_min_distance(box))  # every ball strictly in front
    a, b = (A + B) / 2, (C + D) / 2
    target = box.center + a * right + b * down
    return target, float(max(-c, 1e-6))


def fit_camera(scene: Gaussians | SceneBox, fov_y: float = math.radians(FOV_Y_DEG), aspect: float = VIEWER_ASPECT,
               elevation_deg: float = ELEVATION_DEG, azimuth_deg: float = 0.0, margin: float = MARGIN) -> FitCamera:
    """The camera every viewer opens with: looking from (elevation, azimuth) at the scene's object,
    centred, just far enough back that all of it is in an `aspect` frame with `margin` to spare."""
    box = scene if isinstance(scene, SceneBox) else scene_box(scene)
    direction = view_direction(elevation_deg, azimuth_deg)
    target, d = fit_view(box, direction, fov_y, aspect, margin)
    return FitCamera(target + d * direction, target, float(fov_y), float(aspect), box)


def fit_orbit(scene: Gaussians | SceneBox, n_views: int, width: int, height: int,
              fov_y: float = math.radians(FOV_Y_DEG), elevation_deg: float = ELEVATION_DEG,
              margin: float = MARGIN) -> tuple[torch.Tensor, torch.Tensor, SceneBox]:
    """(viewmats (n,4,4), Ks (n,3,3), box) of a turntable with the whole object in frame all the way
    round: the centre is the mean of the views' own `fit_view` targets (one view: exactly `fit_camera`),
    and one distance serves every view (the largest any of them needs to look at that centre)."""
    from .cameras import intrinsics, orbit

    box = scene if isinstance(scene, SceneBox) else scene_box(scene)
    aspect = width / height
    elevation_deg = max(-89.0, min(89.0, float(elevation_deg)))  # straight down has no "up" to turn around
    directions = [view_direction(elevation_deg, 360.0 * i / n_views) for i in range(n_views)]
    target = np.mean([fit_view(box, dv, fov_y, aspect, margin)[0] for dv in directions], axis=0)
    d = max(fit_distance(box, dv, fov_y, aspect, margin, target) for dv in directions)
    viewmats = orbit(n_views, d, elevation_deg, tuple(float(c) for c in target))
    f = 0.5 * height / math.tan(fov_y / 2)
    K = intrinsics(f, f, width / 2, height / 2)
    return viewmats, K[None].expand(n_views, 3, 3).clone(), box


def check_frameable(viewmats: torch.Tensor, box: SceneBox) -> None:
    """Raise `FramingError` (one line) when fitted cameras cannot show the scene: farther than the
    rasterizer's depth range, or so far from the origin relative to the scene's size that float32
    cannot resolve it (it would render blank or as noise)."""
    from .cameras import MAX_FRAMING_DISTANCE, MAX_OFFSET_RATIO, FramingError

    vm = viewmats.detach().double()
    eyes = -(vm[:, :3, :3].transpose(1, 2) @ vm[:, :3, 3:]).squeeze(-1)
    center = torch.as_tensor(box.center, dtype=torch.float64)
    distance = float((eyes - center).norm(dim=1).max()) if len(eyes) else 0.0
    offset = float(center.norm())
    if not (math.isfinite(distance) and math.isfinite(offset)) or distance > MAX_FRAMING_DISTANCE:
        raise FramingError(f"cannot frame the scene: the camera would be {distance:.3g} away, beyond the "
                           f"renderer's depth range (up to {MAX_FRAMING_DISTANCE:.0e})")
    if offset > MAX_OFFSET_RATIO * max(distance, 1e-300):
        raise FramingError(f"cannot frame the scene: it lies {offset:.3g} from the origin but needs a camera only "
                           f"{distance:.3g} away, finer than float32 resolves there")


__all__ = ["SceneBox", "check_frameable", "FitCamera", "scene_box", "fit_distance", "fit_view", "fit_camera", "fit_orbit", "view_direction",
           "weighted_quantile", "FOV_Y_DEG", "ELEVATION_DEG", "MARGIN", "VIEWER_ASPECT"]
