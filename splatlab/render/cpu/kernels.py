"""Compiled CPU kernels: tile binning, front-to-back compositing and its hand-written backward.

All kernels work on one camera's screen-space Gaussians (numpy, float32):
  means2d (N,2), conics (N,3) = inverse 2D covariance (a,b,c), colors (N,D), opacities (N,),
  shapes (N,) generalized-exponential β (ignored unless `use_shape`), radii (N,2) int32.
Kernel falloff: G(σ) = exp(-σ) for Gaussians, exp(-σ^(β/2)) for GES, σ = ½ dᵀ Σ⁻¹ d.
Compositing rules (shared with the dense reference): α = min(0.99, o·G); α < 1/255 skipped;
a pixel stops before the Gaussian that would take its transmittance to ≤ 1e-4.
Parallelism is over 16×16 tiles; each Gaussian only visits the pixels of its bounding box.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

TILE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4


@njit(cache=True, nogil=True)
def pixel_bounds(mx: float, my: float, rx: int, ry: int, width: int, height: int):
    """Inclusive pixel range whose centres (p + 0.5) fall within the radius box."""
    x0 = max(int(np.ceil(mx - rx - 0.5)), 0)
    x1 = min(int(np.floor(mx + rx - 0.5)), width - 1)
    y0 = max(int(np.ceil(my - ry - 0.5)), 0)
    y1 = min(int(np.floor(my + ry - 0.5)), height - 1)
    return x0, x1, y0, y1


@njit(cache=True, nogil=True)
def bin_gaussians(means2d, radii, depths, width, height):
    """Per-tile lists of Gaussian ids, each sorted front to back (CSR: offsets, ids)."""
    tiles_x = (width + TILE - 1) // TILE
    tiles_y = (height + TILE - 1) // TILE
    n = means2d.shape[0]
    visible = np.empty(n, np.int64)
    nv = 0
    for g in range(n):
        if radii[g, 0] > 0 and radii[g, 1] > 0:
            visible[nv] = g
            nv += 1
    visible = visible[:nv]
    order = visible[np.argsort(depths[visible], kind="mergesort")]
    counts = np.zeros(tiles_x * tiles_y + 1, np.int64)
    boxes = np.empty((nv, 4), np.int64)
    for k in range(nv):
        g = order[k]
        x0, x1, y0, y1 = pixel_bounds(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], width, height)
        if x0 > x1 or y0 > y1:
            boxes[k, 0] = 1
            boxes[k, 1] = 0
            continue
        boxes[k, 0] = x0 // TILE
        boxes[k, 1] = x1 // TILE
        boxes[k, 2] = y0 // TILE
        boxes[k, 3] = y1 // TILE
        for ty in range(boxes[k, 2], boxes[k, 3] + 1):
            for tx in range(boxes[k, 0], boxes[k, 1] + 1):
                counts[ty * tiles_x + tx + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    ids = np.empty(offsets[-1], np.int32)
    for k in range(nv):
        if boxes[k, 0] > boxes[k, 1]:
            continue
        g = order[k]
        for ty in range(boxes[k, 2], boxes[k, 3] + 1):
            for tx in range(boxes[k, 0], boxes[k, 1] + 1):
                t = ty * tiles_x + tx
                ids[fill[t]] = g
                fill[t] += 1
    return offsets, ids


_LN2 = 0.6931471805599453
_INV_LN2 = 1.4426950408889634
# 2^-n for the range reduction of exp_neg (arguments beyond 14 ln2 underflow to ~6e-5 and
# are only reached where α < 1/255 anyway).
_POW2_NEG = np.array([2.0 ** -i for i in range(16)])


@njit(cache=True, nogil=True, inline="always")
def exp_neg(x):
    """exp(-x) for x >= 0, relative error < 1e-8: 2^-n from a table times a degree-9 Taylor
    polynomial on the remainder in [0, ln 2). libm's exp was the costliest op per pixel."""
    if x >= 15.0 * _LN2:
        return np.exp(-x)
    n = int(x * _INV_LN2)
    r = x - n * _LN2
    p = 1.0 - r * (1.0 - r * (0.5 - r * (1.0 / 6.0 - r * (1.0 / 24.0 - r * (1.0 / 120.0 - r * (
        1.0 / 720.0 - r * (1.0 / 5040.0 - r * (1.0 / 40320.0 - r * (1.0 / 362880.0)))))))))
    return p * _POW2_NEG[n]


@njit(cache=True, nogil=True, inline="always")
def _falloff(sigma, beta, use_shape):
    if use_shape:
        return exp_neg(sigma ** (0.5 * beta))
    return exp_neg(sigma)


@njit(cache=True, nogil=True)
def _pack_tile(start, end, ids, means2d, conics, colors, opacities, shapes, use_shape):
    """Gather one tile's Gaussians into contiguous local arrays (cache-friendly inner loop).

    Column 6 is a conservative σ cut-off: beyond it α < 1/255 for sure, so the exact test and
    the exp() are skipped; pairs near the cut-off still take the exact path.
    """
    n = end - start
    P = np.empty((n, 8), np.float64)
    C = np.empty((n, colors.shape[1]), np.float64)
    for k in range(n):
        g = ids[start + k]
        P[k, 0] = means2d[g, 0]
        P[k, 1] = means2d[g, 1]
        P[k, 2] = conics[g, 0]
        P[k, 3] = conics[g, 1]
        P[k, 4] = conics[g, 2]
        o = opacities[g]
        P[k, 5] = o
        beta = shapes[g] if use_shape else 2.0
        P[k, 7] = beta
        budget = np.log(max(o, 1e-30) * 255.0)
        if use_shape and budget > 0.0:
            budget = budget ** (2.0 / beta)
        P[k, 6] = budget * 1.001 + 1e-3
        for ch in range(colors.shape[1]):
            C[k, ch] = colors[g, ch]
    return P, C


@njit(cache=True, parallel=True, nogil=True)
def rasterize_forward(offsets, ids, means2d, conics, colors, opacities, shapes, use_shape,
                      background, width, height, out_color, out_trans, out_last, out_evals):
    """Composite every tile, pixel by pixel through its depth-sorted list.

    Writes colour (H,W,D), final transmittance, the global list index of the last
    contributing Gaussian (-1 if none) for the backward pass, and how many list entries each
    pixel evaluated (a cost heat-map, and the benchmark's pair count).
    """
    tiles_x = (width + TILE - 1) // TILE
    n_tiles = offsets.shape[0] - 1
    D = colors.shape[1]
    for t in prange(n_tiles):
        start = offsets[t]
        P, C = _pack_tile(start, offsets[t + 1], ids, means2d, conics, colors, opacities, shapes, use_shape)
        n = P.shape[0]
        acc = np.empty(D, np.float64)
        tx0 = (t % tiles_x) * TILE
        ty0 = (t // tiles_x) * TILE
        for py in range(ty0, min(ty0 + TILE, height)):
            fy = py + 0.5
            for px in range(tx0, min(tx0 + TILE, width)):
                fx = px + 0.5
                trans = 1.0
                last = -1
                for ch in range(D):
                    acc[ch] = 0.0
                evals = n
                for k in range(n):
                    dx = P[k, 0] - fx
                    dy = P[k, 1] - fy
                    sigma = 0.5 * (P[k, 2] * dx * dx + P[k, 4] * dy * dy) + P[k, 3] * dx * dy
                    if sigma < 0.0 or sigma > P[k, 6]:
                        continue
                    alpha = min(ALPHA_MAX, P[k, 5] * _falloff(sigma, P[k, 7], use_shape))
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = trans * (1.0 - alpha)
                    if next_t <= T_MIN:
                        evals = k + 1
                        break
                    w = alpha * trans
                    for ch in range(D):
                        acc[ch] += w * C[k, ch]
                    trans = next_t
                    last = k
                for ch in range(D):
                    out_color[py, px, ch] = acc[ch] + trans * background[ch]
                out_trans[py, px] = trans
                out_last[py, px] = start + last if last >= 0 else -1
                out_evals[py, px] = evals


@njit(cache=True, parallel=True, nogil=True)
def rasterize_backward(offsets, ids, means2d, conics, colors, opacities, shapes, use_shape,
                       background, width, height, out_trans, out_last, grad_color, grad_alpha, n_gauss,
                       n_chunks):
    """Walk each pixel's contributors back to front, accumulating per-Gaussian gradients.

    Tiles are dealt round-robin to `n_chunks` workers (one per thread), each with its own
    accumulator, so no atomics are needed and the result is deterministic.
    Returns (n_chunks, N, 10 + D) partial sums: [mean2d x,y | conic a,b,c | opacity | β |
    |mean2d| x,y (absgrad) | spare | colour D] which the caller sums over chunks.
    """
    n_tiles = offsets.shape[0] - 1
    D = colors.shape[1]
    tiles_x = (width + TILE - 1) // TILE
    partial = np.zeros((n_chunks, n_gauss, 10 + D), np.float64)
    for tid in prange(n_chunks):
        behind = np.empty(D, np.float64)
        for t in range(tid, n_tiles, n_chunks):
            start = offsets[t]
            P, C = _pack_tile(start, offsets[t + 1], ids, means2d, conics, colors, opacities, shapes, use_shape)
            n = P.shape[0]
            G = np.zeros((n, 10 + D), np.float64)
            tx0 = (t % tiles_x) * TILE
            ty0 = (t // tiles_x) * TILE
            for py in range(ty0, min(ty0 + TILE, height)):
                fy = py + 0.5
                for px in range(tx0, min(tx0 + TILE, width)):
                    k_last = out_last[py, px] - start
                    if out_last[py, px] < 0:
                        continue
                    fx = px + 0.5
                    t_final = out_trans[py, px]
                    trans = t_final
                    bg_dot = 0.0
                    for ch in range(D):
                        behind[ch] = 0.0
                        bg_dot += grad_color[py, px, ch] * background[ch]
                    g_alpha_px = grad_alpha[py, px]
                    for k in range(k_last, -1, -1):
                        dx = P[k, 0] - fx
                        dy = P[k, 1] - fy
                        a = P[k, 2]
                        b = P[k, 3]
                        c = P[k, 4]
                        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                        if sigma < 0.0 or sigma > P[k, 6]:
                            continue
                        o = P[k, 5]
                        beta = P[k, 7]
                        vis = _falloff(sigma, beta, use_shape)
                        raw = o * vis
                        alpha = min(ALPHA_MAX, raw)
                        if alpha < ALPHA_MIN:
                            continue
                        one_minus = 1.0 - alpha
                        t_i = trans / one_minus
                        w = alpha * t_i
                        v_alpha = 0.0
                        for ch in range(D):
                            gc = grad_color[py, px, ch]
                            G[k, 10 + ch] += w * gc
                            v_alpha += gc * (C[k, ch] * t_i - behind[ch] / one_minus)
                            behind[ch] += C[k, ch] * w
                        v_alpha += (g_alpha_px - bg_dot) * t_final / one_minus
                        trans = t_i
                        if raw > ALPHA_MAX:
                            continue
                        G[k, 5] += vis * v_alpha
                        v_vis = o * v_alpha
                        if use_shape:
                            if sigma > 1e-12:
                                powv = sigma ** (0.5 * beta)
                                v_sigma = -v_vis * vis * 0.5 * beta * powv / sigma
                                G[k, 6] += -v_vis * vis * powv * np.log(sigma) * 0.5
                            else:
                                v_sigma = 0.0
                        else:
                            v_sigma = -v_vis * vis
                        G[k, 2] += 0.5 * v_sigma * dx * dx
                        G[k, 3] += v_sigma * dx * dy
                        G[k, 4] += 0.5 * v_sigma * dy * dy
                        gx = v_sigma * (a * dx + b * dy)
                        gy = v_sigma * (b * dx + c * dy)
                        G[k, 0] += gx
                        G[k, 1] += gy
                        G[k, 7] += abs(gx)
                        G[k, 8] += abs(gy)
            for k in range(n):
                g = ids[start + k]
                for q in range(10 + D):
                    partial[tid, g, q] += G[k, q]
    return partial
