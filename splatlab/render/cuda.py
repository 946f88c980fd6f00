"""CUDA backend: gsplat's fused kernels behind splatlab's API.

gsplat is imported lazily, so machines without CUDA never try to build its extension.  This path
cannot be exercised on CPU-only CI; it is kept deliberately thin (argument mapping only).
"""
from __future__ import annotations

from torch import Tensor

from .types import RenderMeta


def rasterize_cuda(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                   viewmats: Tensor, Ks: Tensor, width: int, height: int, *, near_plane: float,
                   far_plane: float, sh_degree: int | None, backgrounds: Tensor | None, render_mode: str,
                   rasterize_mode: str, eps2d: float, radius_clip: float, absgrad: bool,
                   shapes: Tensor | None) -> tuple[Tensor, Tensor, RenderMeta]:
    if shapes is not None:
        raise NotImplementedError(
            "gsplat's CUDA kernels only draw Gaussian falloff; GES on CUDA uses the effective-scale "
            "approximation (splatlab.methods.ges) or backend='cpu'")
    from gsplat.rendering import rasterization  # lazy: compiles/loads CUDA code

    colors_out, alphas, meta = rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, sh_degree=sh_degree, backgrounds=backgrounds,
        render_mode=render_mode, rasterize_mode=rasterize_mode, eps2d=eps2d, radius_clip=radius_clip,
        absgrad=absgrad, packed=False,
    )
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = meta["radii"]
    if radii.dim() == means2d.dim() - 1:  # gsplat < 1.5 returns one radius per Gaussian
        radii = radii[..., None].expand(*radii.shape, 2)
    meta_out = RenderMeta(means2d=means2d, radii=radii, depths=meta["depths"], conics=meta["conics"],
                          opacities=meta["opacities"], width=width, height=height, backend="cuda")
    return colors_out, alphas, meta_out
