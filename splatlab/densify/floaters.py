"""Floater controls shared by the densification strategies.

A floater is a Gaussian that explains a few training views and nothing else: near a camera it
covers much of that camera's image (painted with whatever that view sees behind it) and is out of
sight, or in the wrong place, for every other view, including the held-out ones.

* `regulariser_terms`: `opacity_reg`·mean(opacity) + `scale_reg`·mean(scale), the loss terms that
  make every Gaussian pay for its opacity and size (MCMC's; here for every strategy).
* `views_containing`: in how many training views each Gaussian's centre lies (in front of the
  camera, inside the image). Scene content sits where many views look; a Gaussian that only a
  handful of views contain can be fitted freely to those few and is pruned (`min_view_fraction`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from splatlab.gaussians import Gaussians


def regulariser_terms(gaussians: Gaussians, opacity_reg: float, scale_reg: float) -> dict[str, Tensor]:
    """The named loss terms for the given weights (empty when both are 0)."""
    terms = {}
    if opacity_reg > 0:
        terms["opacity_reg"] = opacity_reg * torch.sigmoid(gaussians.params["opacities"]).mean()
    if scale_reg > 0:
        terms["scale_reg"] = scale_reg * torch.exp(gaussians.params["scales"]).mean()
    return terms


def pixels_in_views(means: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int,
                    near: float = 1e-2) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel coordinates u, v (C, N) of each point in each camera and whether the image contains it
    (depth > `near`, pixel inside [0, width) x [0, height)), OpenCV camera convention (x right, y
    down, z forward)."""
    vm, K = viewmats.float(), Ks.float()
    cam = torch.einsum("cij,nj->cni", vm[:, :3, :3], means.detach().float()) + vm[:, None, :3, 3]  # (C, N, 3)
    z = cam[..., 2]
    zs = z.clamp_min(near)
    u = K[:, None, 0, 0] * cam[..., 0] / zs + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * cam[..., 1] / zs + K[:, None, 1, 2]
    return u, v, (z > near) & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def views_containing(means: Tensor, viewmats: Tensor, Ks: Tensor, width: int, height: int,
                     near: float = 1e-2, chunk: int = 16) -> Tensor:
    """(N,) number of the (C,) cameras whose image contains each point (`pixels_in_views`)."""
    count = torch.zeros(len(means), dtype=torch.long, device=means.device)
    for s in range(0, len(viewmats), chunk):
        count += pixels_in_views(means, viewmats[s:s + chunk], Ks[s:s + chunk], width, height, near)[2].sum(dim=0)
    return count
