"""How much each splat shows in a set of views: the total blending weight it gets.

    w_i = sum over views, sum over pixels p of  alpha_i(p) * T_i(p)

is the weight splat i's colour has in the rendered pixels (T_i: transmittance in front of it). It
is what the compressor prunes by and weights its codebooks with: a trained scene holds many splats
that are never or barely seen (on garden, 30% of the splats carry 0.1% of the total weight), and
codebook entries spent on them are wasted.

The rendered image is linear in the colours, so w is the gradient of the summed image with respect
to a constant colour of 1 per splat: one forward + backward pass per batch of views.
"""
from __future__ import annotations

import numpy as np
import torch

from splatlab.gaussians import Gaussians

__all__ = ["splat_importance", "least_visible"]


def splat_importance(gaussians: Gaussians, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                     *, batch: int = 4, progress=None) -> np.ndarray:
    """(N,) float64: every splat's summed blending weight alpha * T over all pixels of the C views
    (`viewmats` (C, 4, 4) world-to-camera, `Ks` (C, 3, 3)). `progress(done, total)` is called per batch.
    Rendered through the one render path, so a method's own kernels (e.g. GES shapes) count."""
    from splatlab.cameras import Cameras
    from splatlab.render import render

    n = len(gaussians)
    total = torch.zeros(n, dtype=torch.float64)
    if n == 0:
        return total.numpy()
    means = gaussians.means.detach()
    C = int(viewmats.shape[0])
    frozen = Gaussians.from_fields(gaussians.detached_fields(), gaussians.method)
    frozen.requires_grad_(False)  # constants: only the colours carry a gradient
    with torch.enable_grad():
        for s in range(0, C, max(1, int(batch))):
            vm = viewmats[s:s + batch].to(device=means.device, dtype=torch.float32)
            K = Ks[s:s + batch].to(device=means.device, dtype=torch.float32)
            ones = torch.ones(n, 1, dtype=means.dtype, device=means.device, requires_grad=True)
            img = render(frozen, Cameras(vm, K, width, height), colors=ones).images
            (grad,) = torch.autograd.grad(img.sum(), ones)
            total += grad[:, 0].detach().double().cpu()
            if progress is not None:
                progress(min(C, s + batch), C)
    return total.numpy()


def least_visible(importance: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the least important splats whose weights together stay below `fraction` of
    the total (ties broken by index, so the result does not depend on sort stability)."""
    w = np.asarray(importance, dtype=np.float64)
    mask = np.zeros(w.shape[0], dtype=bool)
    total = w.sum()
    if fraction <= 0 or total <= 0:
        return mask
    order = np.lexsort((np.arange(w.shape[0]), w))
    cum = np.cumsum(w[order])
    mask[order[cum < fraction * total]] = True
    return mask
