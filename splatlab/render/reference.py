"""Dense reference compositor: every Gaussian at every pixel, in plain torch with autograd.

Slow on purpose and independent of tiling, bounding boxes and hand-written gradients; it
defines what the fast backends must compute (same α clamp / skip / early-stop rules) and is the
baseline of `scripts/bench_rasterizer.py`.
"""
from __future__ import annotations

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4


def composite_dense(means2d: Tensor, conics: Tensor, colors: Tensor, opacities: Tensor, depths: Tensor,
                    valid: Tensor, width: int, height: int, background: Tensor | None = None,
                    shapes: Tensor | None = None, pixel_chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """One camera. means2d (N,2), conics (N,3), colors (N,D), opacities/depths/valid (N,)."""
    idx = torch.nonzero(valid).squeeze(1)
    idx = idx[torch.argsort(depths.detach()[idx], stable=True)]
    m, con, col, op = means2d[idx], conics[idx], colors[idx], opacities[idx]
    beta = None if shapes is None else shapes[idx]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=m.dtype), torch.arange(width, dtype=m.dtype), indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1) + 0.5
    D = colors.shape[1]
    out_c, out_a = [], []
    for start in range(0, pix.shape[0], pixel_chunk):
        p = pix[start:start + pixel_chunk]
        d = m[None] - p[:, None]
        dx, dy = d[..., 0], d[..., 1]
        sigma = 0.5 * (con[None, :, 0] * dx * dx + con[None, :, 2] * dy * dy) + con[None, :, 1] * dx * dy
        if beta is None:
            falloff = torch.exp(-sigma)
        else:
            falloff = torch.exp(-sigma.clamp_min(0) ** (0.5 * beta[None]))
        alpha = torch.clamp(op[None] * falloff, max=ALPHA_MAX)
        alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
        one_minus = 1.0 - alpha
        trans_excl = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), one_minus[:, :-1]], 1), 1)
        ok = (trans_excl * one_minus > T_MIN) | (alpha == 0)
        keep = torch.cumprod(ok.to(alpha.dtype), 1)
        w = alpha * trans_excl * keep
        rgb = w @ col
        a = 1.0 - torch.prod(1.0 - alpha * keep, dim=1)
        if background is not None:
            rgb = rgb + (1.0 - a)[:, None] * background[None]
        out_c.append(rgb)
        out_a.append(a)
    img = torch.cat(out_c).reshape(height, width, D)
    alph = torch.cat(out_a).reshape(height, width, 1)
    return img, alph
