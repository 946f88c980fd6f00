"""`rasterize()`: one differentiable Gaussian rasterizer, gsplat's calling convention, two backends."""
from __future__ import annotations

import dataclasses
import os

import torch
from torch import Tensor

from .projection import Projected, project
from .sh import eval_sh
from .types import Backend, RasterizeMode, RenderMeta, RenderMode

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
BACKEND_ENV = "SPLATLAB_BACKEND"


def select_backend(requested: str = "auto") -> str:
    """'auto' -> $SPLATLAB_BACKEND if set, else 'cuda' when available, else 'cpu'."""
    if requested == "auto":
        requested = os.environ.get(BACKEND_ENV, "auto") or "auto"
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested not in ("cpu", "cuda", "reference"):
        raise ValueError(f"unknown rasterizer backend {requested!r} (choose auto, cpu, cuda or reference)")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("backend 'cuda' requested but torch.cuda.is_available() is False")
    return requested


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                  backgrounds, render_mode, rasterize_mode, shapes) -> None:
    N = means.shape[0]
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"means must be (N,3), got {tuple(means.shape)}")
    for name, t, shape in (("quats", quats, (N, 4)), ("scales", scales, (N, 3)), ("opacities", opacities, (N,))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must be {shape}, got {tuple(t.shape)}")
    if shapes is not None and tuple(shapes.shape) != (N,):
        raise ValueError(f"shapes must be ({N},), got {tuple(shapes.shape)}")
    if viewmats.ndim != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise ValueError(f"viewmats must be (C,4,4) and Ks (C,3,3), got {tuple(viewmats.shape)}, {tuple(Ks.shape)}")
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"image size must be at least 1x1, got {width}x{height}")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if rasterize_mode not in ("classic", "antialiased"):
        raise ValueError(f"rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}")
    if sh_degree is not None and (colors.ndim != 3 or colors.shape[-2] < (sh_degree + 1) ** 2 or colors.shape[0] != N):
        raise ValueError(f"sh_degree {sh_degree} needs colors of shape (N, >= {(sh_degree + 1) ** 2}, 3), got {tuple(colors.shape)}")
    tensors = {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors,
               "viewmats": viewmats, "Ks": Ks}
    if shapes is not None:
        tensors["shapes"] = shapes
    if backgrounds is not None:
        tensors["backgrounds"] = backgrounds
    for name, t in tensors.items():
        # A sum is finite only if every element is (inf/NaN propagate); it is ~10x cheaper than an
        # element-wise isfinite mask, and an overflowing sum of finite values falls back to the mask.
        if not torch.isfinite(t.detach().sum()) and not torch.isfinite(t).all():
            raise ValueError(f"rasterize: {name} contains NaN or inf values")


def _colors_per_camera(colors: Tensor, means: Tensor, viewmats: Tensor, sh_degree: int | None) -> Tensor:
    C = viewmats.shape[0]
    if sh_degree is None:
        return colors.expand(C, *colors.shape) if colors.ndim == 2 else colors
    campos = torch.linalg.inv(viewmats)[:, :3, 3]
    dirs = means[None] - campos[:, None]
    rgb = eval_sh(sh_degree, colors[None].expand(C, *colors.shape), dirs)
    return torch.clamp_min(rgb + 0.5, 0.0)


def rasterize(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
    viewmats: Tensor, Ks: Tensor, width: int, height: int, *,
    near_plane: float = 0.01, far_plane: float = 1e10, sh_degree: int | None = None,
    backgrounds: Tensor | None = None, render_mode: RenderMode = "RGB",
    rasterize_mode: RasterizeMode = "classic", eps2d: float = 0.3, radius_clip: float = 0.0,
    absgrad: bool = False, shapes: Tensor | None = None, backend: Backend = "auto",
    visibility: Tensor | None = None,
) -> tuple[Tensor, Tensor, RenderMeta]:
    """Render N Gaussians into C cameras.

    Args follow gsplat's `rasterization`: activated `scales` (N,3) and `opacities` (N,), unit or
    raw wxyz `quats`, `colors` (N,D) / (C,N,D) or SH coefficients (N,K,3) with `sh_degree`.
    `shapes` (N,) switches the falloff to the generalized exponential exp(-σ^(β/2)) (β = 2 is a
    Gaussian). `visibility` (C,N) bool (an extension of gsplat's convention) draws Gaussian n in
    camera c only where it is True, as if each camera had its own subset: one call renders a batch
    of views whose Gaussian sets differ (level-of-detail cuts); CPU and reference backends only.
    Returns colours (C,H,W,D'), alphas (C,H,W,1) and a `RenderMeta`.
    """
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                  backgrounds, render_mode, rasterize_mode, shapes)
    width, height = int(width), int(height)
    chosen = select_backend(backend)
    if visibility is not None and tuple(visibility.shape) != (viewmats.shape[0], means.shape[0]):
        raise ValueError(f"visibility must be (C,N) = {(viewmats.shape[0], means.shape[0])}, got {tuple(visibility.shape)}")
    if chosen == "cuda":
        if visibility is not None:
            raise ValueError("rasterize: visibility masks are not supported on the cuda backend (render per camera)")
        from .cuda import rasterize_cuda
        return rasterize_cuda(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                              near_plane=near_plane, far_plane=far_plane, sh_degree=sh_degree,
                              backgrounds=backgrounds, render_mode=render_mode, rasterize_mode=rasterize_mode,
                              eps2d=eps2d, radius_clip=radius_clip, absgrad=absgrad, shapes=shapes)

    C = viewmats.shape[0]
    if chosen == "cpu":
        # each camera projects only its visible rows (the others come out culled, radii 0)
        proj, sh_colors = _project_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                                       near_plane, far_plane, eps2d, rasterize_mode == "antialiased", shapes,
                                       radius_clip, sh_degree if "RGB" in render_mode else None, visibility)
    else:
        proj = project(means, quats, scales, opacities, viewmats, Ks, width, height, near_plane=near_plane,
                       far_plane=far_plane, eps2d=eps2d, antialiased=rasterize_mode == "antialiased",
                       shapes=shapes, radius_clip=radius_clip)
        sh_colors = None
    if visibility is not None:  # culled in camera c: radii 0, exactly as the projection culls
        proj = dataclasses.replace(proj, radii=proj.radii * visibility.to(proj.radii.device)[..., None].to(proj.radii.dtype))
    if proj.means2d.requires_grad:
        proj.means2d.retain_grad()

    channels = []
    if "RGB" in render_mode:
        channels.append(sh_colors if sh_colors is not None else _colors_per_camera(colors, means, viewmats, sh_degree))
    if "D" in render_mode:
        channels.append(proj.depths[..., None])
    feats = torch.cat(channels, dim=-1) if len(channels) > 1 else channels[0]
    if backgrounds is not None:
        bg = backgrounds.expand(C, backgrounds.shape[-1]) if backgrounds.ndim == 1 else backgrounds
        if bg.shape[-1] != feats.shape[-1]:  # depth channels composite over 0
            bg = torch.cat([bg, bg.new_zeros(C, feats.shape[-1] - bg.shape[-1])], dim=-1)
    else:
        bg = None

    absgrad_buffer = torch.zeros_like(proj.means2d.detach()) if absgrad else None
    if chosen == "reference":
        images, alphas = _composite_reference(proj, feats, bg, shapes, width, height)
    else:
        from .cpu.backend import RasterizeToPixels
        images, alphas = RasterizeToPixels.apply(
            proj.means2d, proj.conics, feats.contiguous(), proj.opacities, shapes, bg, proj.radii,
            proj.depths, width, height, absgrad_buffer, visibility)

    if render_mode in ("ED", "RGB+ED"):
        images = torch.cat([images[..., :-1], images[..., -1:] / alphas.clamp_min(1e-10)], dim=-1)
    meta = RenderMeta(means2d=proj.means2d, radii=proj.radii, depths=proj.depths, conics=proj.conics,
                      opacities=proj.opacities, width=width, height=height, backend=chosen,
                      absgrad_buffer=absgrad_buffer)
    return images, alphas, meta


def _composite_reference(proj: Projected, feats: Tensor, bg: Tensor | None, shapes: Tensor | None,
                         width: int, height: int) -> tuple[Tensor, Tensor]:
    from .reference import composite_dense

    imgs, alphas = [], []
    for i in range(feats.shape[0]):
        valid = (proj.radii[i] > 0).all(-1)
        img, a = composite_dense(proj.means2d[i], proj.conics[i], feats[i], proj.opacities[i], proj.depths[i],
                                 valid, width, height, None if bg is None else bg[i], shapes)
        imgs.append(img)
        alphas.append(a)
    return torch.stack(imgs), torch.stack(alphas)


def _project_cpu(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near, far, eps2d,
                 antialiased, shapes, radius_clip, sh_degree, visibility=None) -> tuple[Projected, Tensor | None]:
    from .cpu.backend import ProjectGaussians

    coeffs = colors if sh_degree is not None else None
    means2d, conics, depths, opac, sh_colors, radii = ProjectGaussians.apply(
        means, quats, scales, opacities, coeffs, shapes, viewmats, Ks, width, height, near, far, eps2d,
        antialiased, radius_clip, -1 if sh_degree is None else sh_degree, visibility)
    proj = Projected(means2d=means2d, conics=conics, depths=depths, opacities=opac, radii=radii, cov2d=None)
    return proj, (sh_colors if sh_degree is not None else None)
