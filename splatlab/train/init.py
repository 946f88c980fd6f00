"""Initial Gaussians: from the scene's points (SfM or `splatlab triangulate`) or random, plus
background points along the training rays when the photos have a background to explain.

Random or sparse-point initialisations only cover the region the cameras look at; an opaque
capture also shows sky and distant ground, which the optimiser otherwise paints onto floaters
near the cameras (they explain the training views and fail on the held-out ones). Points spread
along randomly chosen training pixels' rays, beyond the scene's points and uniformly in disparity
(1/distance), with the colour of that pixel, give the far field something to converge from.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from splatlab.data import SceneData
from splatlab.gaussians import Gaussians

from .config import TrainConfig, gaussian_budget

def knn_scales(points: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Mean distance from each point to its `k` nearest neighbours (scipy cKDTree)."""
    pts = points.detach().cpu().double().numpy()
    n = len(pts)
    if n < 2:
        return torch.ones(n)
    kk = min(k, n - 1)
    dist, _ = cKDTree(pts).query(pts, k=kk + 1)
    d = dist[:, 1:].mean(axis=1)
    positive = d[d > 0]
    floor = positive.min() if len(positive) else 1e-3
    return torch.from_numpy(np.maximum(d, floor)).float()


def random_points_in_camera_box(scene: SceneData, n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform points in the bounding box of the training camera centres (flat sides widened)."""
    centers = scene.train.cameras.centers.float()
    lo, hi = centers.min(0).values, centers.max(0).values
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    half = torch.maximum(half, 0.5 * half.max().clamp_min(1e-3 * scene.scene_scale) * torch.ones(3))
    return mid + half * (2 * torch.rand(n, 3, generator=generator) - 1)


def camera_focus(scene: SceneData) -> tuple[torch.Tensor, float] | None:
    """Point nearest (least squares) to all training optical axes and the radius the views cover
    there; None when the cameras do not look at a common region (e.g. a forward-facing capture)."""
    c2w = scene.train.cameras.camtoworlds.double()
    origins, dirs = c2w[:, :3, 3], torch.nn.functional.normalize(c2w[:, :3, 2], dim=1)
    projector = torch.eye(3, dtype=torch.float64) - dirs[:, :, None] * dirs[:, None, :]
    focus = torch.linalg.lstsq(projector.sum(0), (projector @ origins[:, :, None]).sum(0)).solution[:, 0]
    to_focus = focus - origins
    if (torch.nn.functional.cosine_similarity(to_focus, dirs, dim=1) < 0.9).float().mean() > 0.2:
        return None
    K = scene.train.cameras.Ks[0]
    half_fov = math.atan(0.5 * min(scene.train.cameras.width / K[0, 0].item(), scene.train.cameras.height / K[1, 1].item()))
    radius = to_focus.norm(dim=1).median().item() * math.sin(half_fov)
    return focus.float(), radius


def random_init_points(scene: SceneData, n: int, generator: torch.Generator, radius_factor: float = 1.0) -> torch.Tensor:
    """Random initial positions without (enough) SfM points: uniform in the ball every camera looks
    at; the camera box when the cameras share no focus (e.g. a forward-facing capture).

    Nothing is placed near the cameras: a random point there covers a large part of a few views,
    and the optimiser turns it into a floater painted with the background those views see behind
    it (the background is left to the points along the rays beyond the scene, `view_ray_points`).
    `radius_factor` < 1 shrinks the ball towards the focus."""
    focus = camera_focus(scene)
    if focus is None:
        return random_points_in_camera_box(scene, n, generator)
    center, radius = focus
    direction = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator), dim=1)
    r = radius * radius_factor * torch.rand(n, 1, generator=generator) ** (1.0 / 3.0)
    return center + direction * r


def has_background(scene: SceneData) -> bool:
    """True when the training photos are opaque (no alpha channel to cut the object out)."""
    return len(scene.train) > 0 and scene.train.load_alpha(0) is None


def view_ray_points(scene: SceneData, n: int, near: float, far: float,
                    generator: torch.Generator, excluded: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` points on the rays of random training pixels, distance uniform in disparity between
    `near` and `far`, coloured by their pixel. `excluded` (per view, an (H, W) bool mask or None)
    leaves pixels out: a pixel whose surface is known needs no point beyond it."""
    views = scene.train
    view = torch.randint(len(views), (n,), generator=generator)
    pix = torch.rand(n, 2, generator=generator) * torch.tensor([float(scene.width), float(scene.height)])
    if excluded is not None:
        for i in view.unique().tolist():
            if excluded[i] is None:
                continue
            free = torch.nonzero(~excluded[i])  # (row, col)
            sel = torch.nonzero(view == i).reshape(-1)
            if len(free) == 0:
                continue
            pick = free[torch.randint(len(free), (len(sel),), generator=generator)].float()
            pix[sel] = pick.flip(1) + torch.rand(len(sel), 2, generator=generator)
    u = torch.rand(n, generator=generator)
    dist = 1.0 / (1.0 / near + u * (1.0 / far - 1.0 / near))
    points, colors = torch.empty(n, 3), torch.empty(n, 3)
    for i in view.unique().tolist():
        sel = view == i
        K, vm = views.cameras.Ks[i].float(), views.cameras.viewmats[i].float()
        R, t = vm[:3, :3], vm[:3, 3]
        x = (pix[sel, 0] - K[0, 2]) / K[0, 0]
        y = (pix[sel, 1] - K[1, 2]) / K[1, 1]
        dirs = torch.nn.functional.normalize(torch.stack([x, y, torch.ones_like(x)], dim=1), dim=1) @ R
        points[sel] = -R.T @ t + dirs * dist[sel, None]
        image = views.load_image(i)
        colors[sel] = image[pix[sel, 1].long().clamp_max(scene.height - 1), pix[sel, 0].long().clamp_max(scene.width - 1)]
    return points, colors


def background_range(scene: SceneData, points: torch.Tensor) -> tuple[float, float]:
    """Distances for background points: from beyond (almost) all scene points to 30x that."""
    centers = scene.train.cameras.centers.float()
    reach = (points - centers.mean(0)).norm(dim=1)
    near = max(float(torch.quantile(reach, 0.99)) if len(reach) else 0.0, 2.0 * scene.scene_scale)
    return near, 30.0 * near


def use_sweep(scene: SceneData, cfg: TrainConfig) -> bool:
    """Plane-sweep initialisation (`sweep.py`): `cfg.init_sweep` on (always, its points added to the
    scene's) or off, or auto: for multi-view video, and for any capture with fewer than
    `cfg.min_init_points` points (posed photos without a point cloud: the sweep then replaces the
    automatic triangulation, whose few hundred SIFT points leave the far ground and the sky to the
    background points; scenes/README.md, "plane-sweep")."""
    if cfg.init_sweep == "auto":
        if scene.format == "video" and scene.train.cameras.times is not None:
            return True
        return (0 if scene.points is None else len(scene.points)) < cfg.min_init_points and len(scene.train) >= 2
    return cfg.init_sweep == "on"


def init_points(scene: SceneData, cfg: TrainConfig,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Positions and colours of the initial Gaussians, and how many of them (last) are background points.

    The scene's points when it has at least `cfg.min_init_points`; with fewer (a triangulation that
    found little texture) or none, random points in the region the cameras look at are added (and,
    with `cfg.init_sweep`, plane-sweep stereo points, `init_points_timed`)."""
    pts, rgb, n_bg, _ = init_points_timed(scene, cfg, generator)
    return pts, rgb, n_bg


def _subsample(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=generator)[:k] if n > k else torch.arange(n)


def init_points_timed(scene: SceneData, cfg: TrainConfig, generator: torch.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """`init_points` and each point's time in seconds (NaN: static or unknown).

    With the sweep (`use_sweep`), up to `init_num_points` static plane-sweep points and half as many
    moving ones (with their frame's time) follow the scene's points; without enough scene points, a
    quarter of the random points fill what the sweep could not match (uniform regions), or, when the
    sweep matched too few, as many as make up `init_num_points`."""
    n_random = int(cfg.init_num_points or 100_000)
    pts, rgb = torch.zeros(0, 3), torch.zeros(0, 3)
    if scene.points is not None and len(scene.points) > 0:
        pts = scene.points.float()
        rgb = scene.points_rgb.float() if scene.points_rgb is not None else torch.full_like(pts, 0.5)
    times = torch.full((len(pts),), float("nan"))
    known = None  # per view, pixels whose surface the sweep found (no background point behind them)
    n_scene = len(pts)
    n_swept = 0
    if use_sweep(scene, cfg):
        import time

        from .sweep import matched_pixels, sweep_points
        t0 = time.perf_counter()
        focus = camera_focus(scene)
        sp_all = sweep_points(scene, focus=None if focus is None else focus[0])
        sp, sc, st = sp_all
        static = torch.nonzero(torch.isnan(st)).reshape(-1)
        moving = torch.nonzero(~torch.isnan(st)).reshape(-1)
        keep = torch.cat([static[_subsample(len(static), n_random, generator)],
                          moving[_subsample(len(moving), n_random // 2, generator)]])
        pts, rgb, times = torch.cat([pts, sp[keep]]), torch.cat([rgb, sc[keep]]), torch.cat([times, st[keep]])
        n_swept = len(keep)
        if n_swept:
            known = matched_pixels(sp_all, scene)
        print(f"[init] plane-sweep stereo on the training views: {len(static)} static and {len(moving)} moving "
              f"points matched, {n_swept} kept ({time.perf_counter() - t0:.0f} s)"
              + ("" if n_swept >= cfg.min_init_points else "; too few, adding the random fallback"), flush=True)
    if n_scene < cfg.min_init_points:
        # the fallback: random points inside the region every view looks at; only a quarter of them
        # when the sweep matched enough (they fill what it could not: uniform regions), else as many
        # as make `init_num_points` with the few it matched
        n_random = max(1, n_random // 4) if n_swept >= cfg.min_init_points else max(1, n_random - n_swept)
        pts = torch.cat([pts, random_init_points(scene, n_random, generator, cfg.init_radius)])
        rgb = torch.cat([rgb, torch.rand(n_random, 3, generator=generator)])
        times = torch.cat([times, torch.full((n_random,), float("nan"))])
    n_bg = cfg.background_points
    if n_bg < 0:
        n_bg = int(cfg.init_num_points or 100_000) // 2 if has_background(scene) else 0
    if n_bg > 0:
        near, far = background_range(scene, pts)
        if cfg.background_layout == "sphere":
            near = far
        if known is not None and cfg.background_points < 0:  # the default: as many per free pixel as without the sweep
            n_bg = max(1, round(n_bg * float(torch.stack([~k for k in known]).float().mean())))
        bg_pts, bg_rgb = view_ray_points(scene, n_bg, near, far, generator, known)
        pts, rgb = torch.cat([pts, bg_pts]), torch.cat([rgb, bg_rgb])
        times = torch.cat([times, torch.full((n_bg,), float("nan"))])
    return pts, rgb, n_bg, times


def pixel_footprint(scene: SceneData, points: torch.Tensor) -> torch.Tensor:
    """World size of one pixel at each point's distance from the nearest training camera."""
    centers = scene.train.cameras.centers.float()
    focal = float(scene.train.cameras.Ks[:, 0, 0].float().mean())
    dist = torch.cdist(points, centers).min(dim=1).values
    return dist / focal


def shell_size(scene: SceneData, cfg: TrainConfig, method) -> int:
    """Gaussians in the far background shell (`shell.py`): `cfg.background_shell`, or with -1 a
    default for opaque photos when the method supports pinned rows, and none otherwise."""
    if cfg.background_shell >= 0:
        return cfg.background_shell
    if not getattr(method, "supports_pinned_rows", True) or not has_background(scene):
        return 0
    from .shell import default_shell_size
    return default_shell_size(cfg.cap_max or gaussian_budget(len(scene.train) * scene.width * scene.height,
                                                             cfg.pixels_per_gaussian))


def init_gaussians(scene: SceneData, cfg: TrainConfig, method, generator: torch.Generator
                   ) -> tuple[Gaussians, torch.Tensor | None]:
    """The initial model, and for a background shell (its first rows, pinned) which of its
    Gaussians a training view contains (None without a shell)."""
    cfg = cfg.resolved()
    pts, rgb, n_bg, times = init_points_timed(scene, cfg, generator)
    n_shell = shell_size(scene, cfg, method)
    scales = knn_scales(pts) * cfg.init_scale
    if n_bg:
        # background points overlap heavily on screen (they all sit in the views' cones): start them
        # at a few pixels wide so the first steps stay cheap, and let densification fill the gaps
        bg = slice(len(pts) - n_bg, len(pts))
        scales[bg] = torch.minimum(scales[bg], 3.0 * pixel_footprint(scene, pts[bg]))
    g = Gaussians.from_points(pts, rgb, scales, opacity=cfg.init_opacity, sh_degree=cfg.sh_degree)
    seen = None
    if n_shell > 0:
        from .shell import shell_fields
        _, far = background_range(scene, pts[:len(pts) - n_bg])
        center = scene.train.cameras.centers.double().mean(0)
        fields, seen = shell_fields(scene, n_shell, center, 2.0 * far, cfg.sh_degree)
        core = g.detached_fields()
        g = Gaussians.from_fields({k: torch.cat([fields[k].to(v), v]) for k, v in core.items()})
    extras = method.extra_fields(len(g), cfg)
    if extras:  # points seen at one moment (the shell rows come first); all NaN: none, but a method
        # still learns the clip's timing here, before the optimisers take its `extra_lrs`
        method.place_in_time(extras, torch.cat([torch.full((len(g) - len(times),), float("nan")), times]), scene)
        g = Gaussians.from_fields({**g.detached_fields(), **extras})
    return g, seen
