"""CPU backend: torch projection + compiled compositing, joined by one autograd Function."""
from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from . import compile_ahead, kernels

# pair counts (C,H,W) of the most recent forward, for the benchmark: row-list entries each pixel
# evaluated up to its stop, and the tile-list entries a plain tile rasterizer walks to the same stop
last_forward_evals: np.ndarray | None = None
last_forward_tile_evals: np.ndarray | None = None
# arguments of the most recent camera's `kernels.rasterize_forward` call, so the benchmark can time
# the compositing kernel alone on exactly the inputs it saw
last_forward_kernel_args: tuple | None = None


def _np(t: Tensor, dtype=np.float32) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dtype)


_ALL_ROWS = np.empty(0, np.int64)


def _camera_rows(visibility, C: int) -> list[np.ndarray | None]:
    """Per camera, the rows its kernels visit: None (every row) without `visibility` or when the
    camera sees every row, else its True rows (possibly none)."""
    if visibility is None:
        return [None] * C
    vis = np.ascontiguousarray(visibility.detach().cpu().numpy(), dtype=bool)
    return [None if v.all() else np.flatnonzero(v).astype(np.int64) for v in vis]


class RasterizeToPixels(torch.autograd.Function):
    """Screen-space Gaussians (C cameras) -> images. Gradients flow to means2d, conics, colors,
    opacities and shapes; the absolute 2D-mean gradient is written into `absgrad` in place."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, shapes, backgrounds, radii, depths,
                width: int, height: int, absgrad, visibility=None):
        """`visibility` (C,N) bool or None: camera c draws only its True rows (their radii must be 0
        elsewhere); its per-Gaussian tables are then built for those rows only."""
        global last_forward_evals, last_forward_tile_evals, last_forward_kernel_args
        compile_ahead.wait_ready()
        C, N, D = colors.shape
        use_shape = shapes is not None and shapes.numel() > 0
        out_color = np.empty((C, height, width, D), np.float32)
        out_trans = np.empty((C, height, width), np.float64)
        out_last = np.empty((C, height, width), np.int32)
        out_evals = np.empty((C, height, width), np.int32)
        out_tile_evals = np.empty((C, height, width), np.int32)
        shapes_np = _np(shapes) if use_shape else np.ones(1, np.float32)
        bg_np = _np(backgrounds) if backgrounds is not None else np.zeros((C, D), np.float32)
        n_workers = numba.get_num_threads()
        rows = _camera_rows(visibility, C)
        cams = []
        for i in range(C):
            m2 = _np(means2d[i])
            # a camera that draws no row still gets (unused) tables of every row: its radii are all 0
            P, Q = kernels.prepare_gaussians(m2, _np(conics[i]), _np(opacities[i]), shapes_np, use_shape,
                                             _ALL_ROWS if rows[i] is None else rows[i])
            col = _np(colors[i])
            offsets, ids = kernels.bin_gaussians(m2, _np(radii[i], np.int32), _np(depths[i]), width, height)
            woff, wtiles = kernels.schedule_tiles(offsets, n_workers, width, height)
            args = (offsets, ids, P, Q, col, use_shape, bg_np[i], width, height, woff, wtiles,
                    out_color[i], out_trans[i], out_last[i], out_evals[i], out_tile_evals[i])
            kernels.rasterize_forward(*args)
            last_forward_kernel_args = args
            cams.append((P, Q, col, offsets, ids, woff, wtiles))
        ctx.saved = (cams, bg_np, out_trans, out_last, use_shape, width, height, absgrad, N, D)
        last_forward_evals = out_evals
        last_forward_tile_evals = out_tile_evals
        alphas = torch.from_numpy(1.0 - out_trans).float()[..., None]
        return torch.from_numpy(out_color), alphas

    @staticmethod
    def backward(ctx, grad_color, grad_alpha):
        cams, bg_np, out_trans, out_last, use_shape, width, height, absgrad, N, D = ctx.saved
        C = len(cams)
        g_color = _np(grad_color) if grad_color is not None else np.zeros((C, height, width, D), np.float32)
        g_alpha = _np(grad_alpha[..., 0]) if grad_alpha is not None else np.zeros((C, height, width), np.float32)
        grads = np.empty((C, N, 10 + D), np.float32)
        for i in range(C):
            P, Q, col, offsets, ids, woff, wtiles = cams[i]
            partial = kernels.rasterize_backward(offsets, ids, P, Q, col, use_shape, bg_np[i], width, height,
                                                 woff, wtiles, out_trans[i], out_last[i], g_color[i], g_alpha[i], N)
            kernels.sum_partials(partial, grads[i])
        g = torch.from_numpy(grads)
        if absgrad is not None:
            absgrad += g[..., 7:9]
        v_shapes = g[..., 6] if use_shape else None
        return g[..., 0:2], g[..., 2:5], g[..., 10:], g[..., 5], v_shapes, None, None, None, None, None, None, None


class ProjectGaussians(torch.autograd.Function):
    """3D Gaussians -> per-camera screen-space Gaussians (+ SH colours), compiled both ways."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, sh_coeffs, shapes, viewmats, Ks, width: int, height: int,
                near: float, far: float, eps2d: float, antialiased: bool, radius_clip: float, sh_degree: int,
                visibility=None):
        """`visibility` (C,N) bool or None: camera c projects only its True rows; the others come
        out culled (radii 0) with zero outputs, so they draw nothing and get zero gradients."""
        from . import preprocess

        compile_ahead.wait_ready()  # kernels being compiled ahead: load them from the cache, not compile twice
        C, N = viewmats.shape[0], means.shape[0]
        m, q, s, o = _np(means), _np(quats), _np(scales), _np(opacities)
        use_shape = shapes is not None
        sh_np = _np(shapes) if use_shape else np.ones(1, np.float32)
        coeffs = _np(sh_coeffs) if sh_degree >= 0 else np.zeros((1, 1, 3), np.float32)
        vm, Kn = _np(viewmats, np.float64), _np(Ks, np.float64)
        alloc = np.empty if visibility is None else np.zeros
        means2d = alloc((C, N, 2), np.float32)
        conics = alloc((C, N, 3), np.float32)
        depths = alloc((C, N), np.float32)
        opac = alloc((C, N), np.float32)
        radii = alloc((C, N, 2), np.int32)
        colors = alloc((C, N, 3) if sh_degree >= 0 else (C, 0, 3), np.float32)
        rows = _camera_rows(visibility, C)
        for i in range(C):
            if rows[i] is not None and len(rows[i]) == 0:
                continue  # draws nothing: outputs stay zero, radii 0 (an empty list would mean every row)
            preprocess.project_forward(m, q, s, o, sh_np, use_shape, vm[i], Kn[i], width, height, near, far, eps2d,
                                       antialiased, radius_clip, coeffs, sh_degree, means2d[i], conics[i],
                                       depths[i], opac[i], radii[i], colors[i],
                                       _ALL_ROWS if rows[i] is None else rows[i])
        ctx.arrays = (m, q, s, o, coeffs, vm, Kn, radii, colors)
        ctx.settings = (width, height, eps2d, antialiased, sh_degree)
        out_radii = torch.from_numpy(radii)
        ctx.mark_non_differentiable(out_radii)
        return (torch.from_numpy(means2d), torch.from_numpy(conics), torch.from_numpy(depths),
                torch.from_numpy(opac), torch.from_numpy(colors), out_radii)

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, v_opac, v_colors, _v_radii):
        from . import preprocess

        m, q, s, o, coeffs, vm, Kn, radii, colors = ctx.arrays
        width, height, eps2d, antialiased, sh_degree = ctx.settings
        C, N = vm.shape[0], m.shape[0]

        def grad_or_zeros(t, shape):
            return _np(t) if t is not None else np.zeros(shape, np.float32)

        vm2 = grad_or_zeros(v_means2d, (C, N, 2))
        vco = grad_or_zeros(v_conics, (C, N, 3))
        vd = grad_or_zeros(v_depths, (C, N))
        vo = grad_or_zeros(v_opac, (C, N))
        vc = grad_or_zeros(v_colors, colors.shape)
        g_means = np.zeros((N, 3), np.float64)
        g_quats = np.zeros((N, 4), np.float64)
        g_scales = np.zeros((N, 3), np.float64)
        g_opac = np.zeros(N, np.float64)
        g_sh = np.zeros(coeffs.shape, np.float64)
        for i in range(C):
            preprocess.project_backward(m, q, s, o, vm[i], Kn[i], width, height, eps2d, antialiased, coeffs,
                                        sh_degree, radii[i], colors[i], vm2[i], vco[i], vd[i], vo[i], vc[i],
                                        g_means, g_quats, g_scales, g_opac, g_sh)

        def out(a):
            return torch.from_numpy(a.astype(np.float32))

        return (out(g_means), out(g_quats), out(g_scales), out(g_opac),
                out(g_sh) if sh_degree >= 0 else None,
                None, None, None, None, None, None, None, None, None, None, None, None)
