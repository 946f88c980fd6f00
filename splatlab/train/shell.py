"""A far shell of Gaussians around the cameras, so every viewing direction has a background.

An opaque capture shows sky and distant ground. The background points along training rays
(`init.view_ray_points`) only cover directions some training view saw; a held-out view that looks
a little higher or wider sees nothing there and shows the training background colour (white), the
largest error left on random scenes (`scenes/README.md`, issue 11). The shell covers the whole sphere:

* `shell_size` Gaussians on a Fibonacci sphere around the cameras' centroid, far beyond the scene,
  each a flat disk facing the centre and wide enough to overlap its neighbours (nearly opaque).
* They are *pinned*: the trainer keeps their position, shape and opacity and the densification
  strategies never clone, split, prune, relocate or reset them (`strategy_state["pinned"]`, the
  first rows of the model). Only their colour (`sh0`) trains, from the views that see them.
* A shell Gaussian that no training view contains has nothing to learn from: its colour is the
  inverse-distance average of the nearest seen ones (`fill_unseen`), at the start from the training
  photos and again from the trained colours before the result is saved, so an unseen patch of sky
  continues the sky next to it instead of showing white.

The shell is ordinary Gaussians, so the `.ply`, compression and every viewer show it unchanged.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from splatlab.data import SceneData
from splatlab.densify.floaters import pixels_in_views
from splatlab.gaussians import rgb_to_sh0, sh0_to_rgb

#: disk width (Gaussian sigma) as a fraction of the spacing between neighbouring shell centres
SHELL_WIDTH = 0.7
#: thickness of the disk relative to its width
SHELL_THICKNESS = 0.05
SHELL_OPACITY = 0.99


def fibonacci_sphere(n: int) -> torch.Tensor:
    """`n` nearly evenly spaced unit vectors (golden-angle spiral)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = torch.sqrt((1.0 - z * z).clamp_min(0.0))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], dim=1).float()


def quats_facing(normals: torch.Tensor) -> torch.Tensor:
    """wxyz quaternions rotating the local z axis onto each unit normal (a disk in the local xy plane)."""
    z = torch.tensor([0.0, 0.0, 1.0], dtype=normals.dtype)
    axis = torch.cross(z.expand_as(normals), normals, dim=1)
    w = 1.0 + normals[:, 2]
    q = torch.cat([w[:, None], axis], dim=1)
    flipped = w < 1e-6  # normal = -z: half a turn about x
    q[flipped] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=normals.dtype)
    return torch.nn.functional.normalize(q, dim=1)


def shell_seen_colors(scene: SceneData, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean training-photo colour at each shell point's projection, and whether any view contains it."""
    views = scene.train
    cams = views.cameras
    total = torch.zeros(len(points), 3)
    count = torch.zeros(len(points))
    for i in range(len(views)):
        u, v, inside = (t[0] for t in pixels_in_views(points, cams.viewmats[i:i + 1], cams.Ks[i:i + 1],
                                                      cams.width, cams.height))
        if not bool(inside.any()):
            continue
        image = views.load_image(i)
        total[inside] += image[v[inside].long(), u[inside].long()]
        count[inside] += 1
    seen = count > 0
    colors = torch.full((len(points), 3), 0.5)
    colors[seen] = total[seen] / count[seen, None]
    return colors, seen


def fill_unseen(directions: torch.Tensor, colors: torch.Tensor, seen: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Colours with every unseen row replaced by the inverse-square-distance average of its `k`
    nearest seen rows (by direction); seen rows are returned unchanged."""
    out = colors.clone()
    if bool(seen.all()) or not bool(seen.any()):
        return out
    seen_dirs = directions[seen].double().numpy()
    kk = min(k, len(seen_dirs))
    dist, idx = cKDTree(seen_dirs).query(directions[~seen].double().numpy(), k=kk)
    dist, idx = np.atleast_2d(dist).reshape(-1, kk), np.atleast_2d(idx).reshape(-1, kk)
    w = 1.0 / np.maximum(dist, 1e-9) ** 2
    w /= w.sum(axis=1, keepdims=True)
    seen_colors = colors[seen].double().numpy()
    out[~seen] = torch.from_numpy((w[:, :, None] * seen_colors[idx]).sum(axis=1)).to(colors.dtype)
    return out


def shell_geometry(n: int, center: torch.Tensor, radius: float) -> dict[str, torch.Tensor]:
    """Means, rotations, log-scales and opacity logits of `n` disks on a sphere of `radius` around
    `center`, facing it, each `SHELL_WIDTH` of the spacing wide: together they hide every direction."""
    directions = fibonacci_sphere(n)
    width = SHELL_WIDTH * radius * math.sqrt(4.0 * math.pi / n)
    return {
        "means": torch.as_tensor(center).float()[None] + radius * directions,
        "quats": quats_facing(-directions),
        "scales": torch.log(torch.tensor([width, width, width * SHELL_THICKNESS])).expand(n, 3).clone(),
        "opacities": torch.full((n,), math.log(SHELL_OPACITY / (1.0 - SHELL_OPACITY))),
    }


def shell_fields(scene: SceneData, n: int, center: torch.Tensor, radius: float, sh_degree: int
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Fields of an `n`-Gaussian shell of `radius` around `center` (pre-activation, as `Gaussians`
    stores them) coloured from the training photos, and the mask of shell Gaussians some training
    view contains."""
    from splatlab.gaussians import num_sh_bases

    fields = shell_geometry(n, center, radius)
    colors, seen = shell_seen_colors(scene, fields["means"])
    colors = fill_unseen(fibonacci_sphere(n), colors, seen)
    fields["sh0"] = rgb_to_sh0(colors.clamp(0, 1))[:, None, :]
    fields["shN"] = torch.zeros(n, num_sh_bases(sh_degree) - 1, 3)
    return fields, seen


def refill_unseen(gaussians, seen: torch.Tensor | None, center) -> None:
    """Recolour the unseen shell Gaussians (the first `len(seen)` rows) from the trained seen ones, in place."""
    if seen is None or len(seen) == 0 or bool(seen.all()):
        return
    n_pinned = len(seen)
    with torch.no_grad():
        means = gaussians.params["means"][:n_pinned]
        center = torch.as_tensor(center, dtype=means.dtype, device=means.device)
        directions = torch.nn.functional.normalize(means - center, dim=1)
        sh0 = gaussians.params["sh0"]
        rgb = sh0_to_rgb(sh0[:n_pinned, 0])
        sh0[:n_pinned, 0] = rgb_to_sh0(fill_unseen(directions, rgb, seen.to(torch.bool)))


def default_shell_size(budget: int) -> int:
    """Shell Gaussians for a Gaussian budget: 4096 (about 3.2 degrees apart), at most 1/8 of the budget."""
    return int(min(4096, max(256, budget // 8)))
