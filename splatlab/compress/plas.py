"""Parallel Linear Assignment Sorting (PLAS) on the CPU.

Arranges N attribute vectors on a W x H grid so that grid neighbours are similar (the layout the
Self-Organizing Gaussians paper uses to make per-attribute images compressible):

    for radius r from R0 down to 1 (r <- r * 0.95):
        repeat:
            target = Gaussian blur of the current grid (radius r)
            shift a block partition of the grid by a random offset
            inside every block split the pixels into random groups of 4
            for every group pick, of the 24 ways to assign its 4 vectors to its 4 pixels,
                the one closest (squared L2) to the target; apply it
        until the relative improvement of this pass < `improvement_threshold`

Grids holding more cells than items (`W * H > N`, e.g. SOG textures) keep the surplus cells at
the row-major tail, frozen: they never take part in a swap and are masked out of the blur
(normalized convolution), so texel i < N always holds a real item and the returned order can be
handed to `write_sog(order=...)` unchanged.

The hot loops (the group assignment and the separable blur) are numba kernels, parallel over
blocks / rows.  Random numbers come from a counter-based hash (seed, iteration, block), so results
do not depend on the number of threads.  What makes them fast (profiled per kernel, one thread,
262k cells x 14 dims: swap pass 0.045-0.105 s -> 0.021-0.033 s, blur 0.016-0.076 s ->
0.012-0.028 s): feature rows are zero-padded to 16 float32 (one 64-byte cache line per texel for
the random accesses of the swap pass); a group's 4x4 cost matrix is accumulated in 16 independent
scalars in a single sweep over the features (no serial reduction chains); the blur convolves the
flat interleaved rows tap by tap on L1-sized chunks with slice-local indices, which LLVM
vectorises (numba's negative-index wraparound checks otherwise block it).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numba
import numpy as np
from numba import njit, prange

__all__ = ["PLASResult", "plas_sort", "sort_keys", "neighbour_distance", "grid_shape_for", "standardize"]

_PERMS = np.array(list(itertools.permutations(range(4))), dtype=np.int64)  # (24, 4), identity first


# ---------------------------------------------------------------------------------------------
# numba kernels


@njit(inline="always")
def _mix64(x):
    """splitmix64 finaliser: a well-mixed 64-bit hash of x (uint64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(parallel=True, cache=True, fastmath=True)
def _swap_pass(vals, idx, target, frozen, H, W, B, sx, sy, seed, perms):
    """One pass of best-of-24 assignments in random 4-pixel groups inside shifted BxB blocks.

    vals (H*W, D) and idx (H*W,) are permuted in place; returns (cost decrease, cost before) summed
    over the groups.  The 4x4 cost matrix of a group is accumulated in 16 independent scalars in
    one sweep over the D feature columns (8 row loads per column, no serial reduction chains);
    rows padded to 16 float32 (64 bytes) make every row one cache line.
    """
    D = vals.shape[1]
    nby = (H + sy + B - 1) // B
    nbx = (W + sx + B - 1) // B
    nblocks = nby * nbx
    gains = np.zeros(nblocks)
    totals = np.zeros(nblocks)
    for b in prange(nblocks):
        by = b // nbx
        bx = b - by * nbx
        y0 = max(by * B - sy, 0)
        y1 = min((by + 1) * B - sy, H)
        x0 = max(bx * B - sx, 0)
        x1 = min((bx + 1) * B - sx, W)
        if y1 <= y0 or x1 <= x0:
            continue
        cells = np.empty((y1 - y0) * (x1 - x0), np.int64)
        m = 0
        for y in range(y0, y1):
            for x in range(x0, x1):
                c = y * W + x
                if not frozen[c]:
                    cells[m] = c
                    m += 1
        if m < 4:
            continue
        # Fisher-Yates shuffle with a counter-based generator (bounded draw by multiply-shift)
        state = _mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(b) + np.uint64(1))
        for i in range(m - 1, 0, -1):
            state = _mix64(state + np.uint64(0x9E3779B97F4A7C15))
            j = np.int64(((state >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
            t = cells[i]
            cells[i] = cells[j]
            cells[j] = t
        cost = np.empty((4, 4))
        tmp = np.empty((4, D), vals.dtype)
        g = 0.0
        tot = 0.0
        for q in range(m // 4):
            base = 4 * q
            a0 = cells[base]
            a1 = cells[base + 1]
            a2 = cells[base + 2]
            a3 = cells[base + 3]
            # c_ij: item now at cell i placed at cell j
            c00 = c01 = c02 = c03 = np.float32(0.0)
            c10 = c11 = c12 = c13 = np.float32(0.0)
            c20 = c21 = c22 = c23 = np.float32(0.0)
            c30 = c31 = c32 = c33 = np.float32(0.0)
            for d in range(D):
                v0 = vals[a0, d]
                v1 = vals[a1, d]
                v2 = vals[a2, d]
                v3 = vals[a3, d]
                t0 = target[a0, d]
                t1 = target[a1, d]
                t2 = target[a2, d]
                t3 = target[a3, d]
                c00 += (v0 - t0) * (v0 - t0)
                c01 += (v0 - t1) * (v0 - t1)
                c02 += (v0 - t2) * (v0 - t2)
                c03 += (v0 - t3) * (v0 - t3)
                c10 += (v1 - t0) * (v1 - t0)
                c11 += (v1 - t1) * (v1 - t1)
                c12 += (v1 - t2) * (v1 - t2)
                c13 += (v1 - t3) * (v1 - t3)
                c20 += (v2 - t0) * (v2 - t0)
                c21 += (v2 - t1) * (v2 - t1)
                c22 += (v2 - t2) * (v2 - t2)
                c23 += (v2 - t3) * (v2 - t3)
                c30 += (v3 - t0) * (v3 - t0)
                c31 += (v3 - t1) * (v3 - t1)
                c32 += (v3 - t2) * (v3 - t2)
                c33 += (v3 - t3) * (v3 - t3)
            cost[0, 0] = c00
            cost[0, 1] = c01
            cost[0, 2] = c02
            cost[0, 3] = c03
            cost[1, 0] = c10
            cost[1, 1] = c11
            cost[1, 2] = c12
            cost[1, 3] = c13
            cost[2, 0] = c20
            cost[2, 1] = c21
            cost[2, 2] = c22
            cost[2, 3] = c23
            cost[3, 0] = c30
            cost[3, 1] = c31
            cost[3, 2] = c32
            cost[3, 3] = c33
            cur = cost[0, 0] + cost[1, 1] + cost[2, 2] + cost[3, 3]
            tot += cur
            best = cur
            bp = 0
            for p in range(1, 24):
                s = cost[perms[p, 0], 0] + cost[perms[p, 1], 1] + cost[perms[p, 2], 2] + cost[perms[p, 3], 3]
                if s < best:
                    best = s
                    bp = p
            if bp != 0 and best < cur - 1e-6 * (1.0 + cur):
                i0 = idx[cells[base + perms[bp, 0]]]
                i1 = idx[cells[base + perms[bp, 1]]]
                i2 = idx[cells[base + perms[bp, 2]]]
                i3 = idx[cells[base + perms[bp, 3]]]
                for j in range(4):
                    src = cells[base + perms[bp, j]]
                    for d in range(D):
                        tmp[j, d] = vals[src, d]
                for j in range(4):
                    cj = cells[base + j]
                    for d in range(D):
                        vals[cj, d] = tmp[j, d]
                idx[a0] = i0
                idx[a1] = i1
                idx[a2] = i2
                idx[a3] = i3
                g += cur - best
        gains[b] = g
        totals[b] = tot
    return gains.sum(), totals.sum()


@njit(parallel=True, cache=True, fastmath=True)
def _box_rows(src, dst, r):
    """dst[y, x] = sum of src[y, x-r .. x+r] (zero outside); src/dst (H, W, C)."""
    H, W, C = src.shape
    for y in prange(H):
        acc = np.zeros(C)
        for x in range(min(r, W)):
            for c in range(C):
                acc[c] += src[y, x, c]
        for x in range(W):
            xa = x + r
            if xa < W:
                for c in range(C):
                    acc[c] += src[y, xa, c]
            xr = x - r - 1
            if xr >= 0:
                for c in range(C):
                    acc[c] -= src[y, xr, c]
            for c in range(C):
                dst[y, x, c] = acc[c]


@njit(parallel=True, cache=True, fastmath=True)
def _box_cols(src, dst, r):
    """dst[y, x] = sum of src[y-r .. y+r, x] (zero outside), in column stripes."""
    H, W, C = src.shape
    S = 64
    nst = (W + S - 1) // S
    for st in prange(nst):
        xs0 = st * S
        xs1 = min(xs0 + S, W)
        acc = np.zeros((xs1 - xs0, C))
        for y in range(min(r, H)):
            for x in range(xs0, xs1):
                for c in range(C):
                    acc[x - xs0, c] += src[y, x, c]
        for y in range(H):
            ya = y + r
            yr = y - r - 1
            for x in range(xs0, xs1):
                for c in range(C):
                    a = acc[x - xs0, c]
                    if ya < H:
                        a += src[ya, x, c]
                    if yr >= 0:
                        a -= src[yr, x, c]
                    acc[x - xs0, c] = a
                    dst[y, x, c] = a


@njit(parallel=True, cache=True, fastmath=True)
def _conv_rows(src, dst, k, C):
    """dst = src convolved along x with kernel k (zero outside); src/dst (H, W*C), rows of W
    interleaved C-channel texels. Per L1-sized chunk of a row, tap by tap: the inner loop is a
    contiguous, vectorisable axpy on a private accumulator."""
    H, WC = src.shape
    r = (k.shape[0] - 1) // 2
    S = 512
    for y in prange(H):
        s = src[y]
        d = dst[y]
        acc = np.empty(S, np.float32)
        for c0 in range(0, WC, S):
            c1 = min(c0 + S, WC)
            for j in range(c1 - c0):
                acc[j] = 0.0
            for ti in range(k.shape[0]):
                off = (ti - r) * C
                w = k[ti]
                j0 = max(c0, -off)
                j1 = min(c1, WC - off)
                if j1 <= j0:
                    continue
                sv = s[j0 + off:j1 + off]  # slices + range(len) from 0: no negative-index
                av = acc[j0 - c0:j1 - c0]  # wraparound checks, so LLVM vectorises
                for j in range(j1 - j0):
                    av[j] += w * sv[j]
            for j in range(c1 - c0):
                d[c0 + j] = acc[j]


@njit(parallel=True, cache=True, fastmath=True)
def _conv_cols(src, dst, k):
    """dst = src convolved along y with kernel k (zero outside); src/dst (H, W*C)."""
    H, WC = src.shape
    r = (k.shape[0] - 1) // 2
    S = 512
    for y in prange(H):
        d = dst[y]
        acc = np.empty(S, np.float32)
        for c0 in range(0, WC, S):
            c1 = min(c0 + S, WC)
            for j in range(c1 - c0):
                acc[j] = 0.0
            for ti in range(k.shape[0]):
                yy = y + ti - r
                if 0 <= yy < H:
                    w = k[ti]
                    sv = src[yy, c0:c1]
                    for j in range(c1 - c0):
                        acc[j] += w * sv[j]
            for j in range(c1 - c0):
                d[c0 + j] = acc[j]


@njit(parallel=True, cache=True, fastmath=True)
def _normalize(buf, out, frozen):
    """out[cell, :D] = buf[cell, :D] / buf[cell, D] (the blurred mask), cost vs nothing."""
    n, C = buf.shape
    D = C - 1
    for i in prange(n):
        w = buf[i, D]
        inv = 1.0 / w if w > 1e-12 else 0.0
        for d in range(D):
            out[i, d] = buf[i, d] * inv


@njit(parallel=True, cache=True, fastmath=True)
def _pack(vals, frozen, buf):
    """buf[cell] = (vals[cell, :D], 1) on used cells, 0 on frozen ones (D = buf columns - 1; vals
    may carry zero padding columns beyond D)."""
    n = vals.shape[0]
    D = buf.shape[1] - 1
    for i in prange(n):
        if frozen[i]:
            for d in range(D + 1):
                buf[i, d] = 0.0
        else:
            for d in range(D):
                buf[i, d] = vals[i, d]
            buf[i, D] = 1.0


@njit(parallel=True, cache=True, fastmath=True)
def _pool(src, f, dst):
    """dst[Y, X] = sum of src over the f x f block (Y, X); src (H, W, C), dst (ceil(H/f), ceil(W/f), C)."""
    H, W, C = src.shape
    h, w, _ = dst.shape
    for Y in prange(h):
        for X in range(w):
            for c in range(C):
                dst[Y, X, c] = 0.0
            for y in range(Y * f, min((Y + 1) * f, H)):
                for x in range(X * f, min((X + 1) * f, W)):
                    for c in range(C):
                        dst[Y, X, c] += src[y, x, c]


@njit(parallel=True, cache=True, fastmath=True)
def _upsample_normalize(low, f, H, W, out):
    """Bilinear upsampling of a pooled, blurred grid (premultiplied channels + mask channel last),
    divided by the mask channel; out (H*W, C-1)."""
    h, w, C = low.shape
    D = C - 1
    for y in prange(H):
        v = (y + 0.5) / f - 0.5
        y0 = int(np.floor(v))
        ty = v - y0
        ya = min(max(y0, 0), h - 1)
        yb = min(max(y0 + 1, 0), h - 1)
        for x in range(W):
            u = (x + 0.5) / f - 0.5
            x0 = int(np.floor(u))
            tx = u - x0
            xa = min(max(x0, 0), w - 1)
            xb = min(max(x0 + 1, 0), w - 1)
            w00 = (1 - ty) * (1 - tx)
            w01 = (1 - ty) * tx
            w10 = ty * (1 - tx)
            w11 = ty * tx
            mw = w00 * low[ya, xa, D] + w01 * low[ya, xb, D] + w10 * low[yb, xa, D] + w11 * low[yb, xb, D]
            inv = 1.0 / mw if mw > 1e-12 else 0.0
            i = y * W + x
            for d in range(D):
                out[i, d] = inv * (w00 * low[ya, xa, d] + w01 * low[ya, xb, d]
                                   + w10 * low[yb, xa, d] + w11 * low[yb, xb, d])


@njit(parallel=True, cache=True, fastmath=True)
def _total_cost(vals, target, frozen):
    n, D = vals.shape
    out = np.zeros(n)
    for i in prange(n):
        if not frozen[i]:
            s = 0.0
            for d in range(D):
                e = vals[i, d] - target[i, d]
                s += e * e
            out[i] = s
    return out.sum()


def blur_sigma(radius: float) -> float:
    """Gaussian sigma used for blur radius r (a kernel of 2r+1 taps, sigma = 0.3 (r - 1) + 0.8)."""
    return 0.3 * (max(radius, 1.0) - 1.0) + 0.8


def _box_widths(sigma: float, n: int = 3) -> list[int]:
    """Odd box widths whose n-fold convolution has (close to) variance sigma^2."""
    wi = math.sqrt(12.0 * sigma * sigma / n + 1.0)
    wl = int(math.floor(wi))
    if wl % 2 == 0:
        wl -= 1
    wl = max(wl, 1)
    wu = wl + 2
    m = round((12.0 * sigma * sigma - n * wl * wl - 4 * n * wl - 3 * n) / (-4.0 * wl - 4.0))
    m = min(max(m, 0), n)
    return [wl] * m + [wu] * (n - m)


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = max(1, int(math.ceil(3.0 * sigma)))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


class _Blurrer:
    """Masked (normalized) separable Gaussian blur of an (H, W, D) grid, reusing buffers.

    sigma <= 3: exact separable kernel; larger: sum-pool by f = sigma // 2, blur the small grid with
    the remaining sigma, bilinear upsample (cost independent of the radius).
    """

    def __init__(self, H: int, W: int, D: int, frozen: np.ndarray, pooling: bool = True,
                 out_columns: int | None = None) -> None:
        self.H, self.W, self.D = H, W, D
        self.pooling = pooling
        self.frozen = frozen
        self.a = np.empty((H, W, D + 1), np.float32)
        self.b = np.empty((H, W, D + 1), np.float32)
        self.out = np.zeros((H * W, max(D, out_columns or D)), np.float32)  # padding columns stay 0

    def __call__(self, vals: np.ndarray, radius: float) -> np.ndarray:
        H, W, D = self.H, self.W, self.D
        _pack(vals, self.frozen, self.a.reshape(H * W, D + 1))
        sigma = blur_sigma(radius)
        a, b = self.a, self.b
        f = int(sigma // 2) if self.pooling else 1
        if sigma <= 3.0 or f < 2:
            if sigma <= 3.0:
                k = _gauss_kernel(sigma)
                _conv_rows(a.reshape(H, W * (D + 1)), b.reshape(H, W * (D + 1)), k, D + 1)
                _conv_cols(b.reshape(H, W * (D + 1)), a.reshape(H, W * (D + 1)), k)
            else:
                for w in _box_widths(sigma):
                    _box_rows(a, b, w // 2)
                    a, b = b, a
                for w in _box_widths(sigma):
                    _box_cols(a, b, w // 2)
                    a, b = b, a
            _normalize(a.reshape(H * W, D + 1), self.out, self.frozen)
            return self.out
        # large radius: sum-pool by f (a box of variance (f^2-1)/12), blur the small grid, upsample
        h, w = -(-H // f), -(-W // f)
        low = np.empty((h, w, D + 1), np.float32)
        tmp = np.empty_like(low)
        _pool(a, f, low)
        s2 = max(sigma * sigma - (f * f - 1) / 12.0, 0.25 * f * f) / (f * f)
        k = _gauss_kernel(math.sqrt(s2))
        _conv_rows(low.reshape(h, w * (D + 1)), tmp.reshape(h, w * (D + 1)), k, D + 1)
        _conv_cols(tmp.reshape(h, w * (D + 1)), low.reshape(h, w * (D + 1)), k)
        _upsample_normalize(low, f, H, W, self.out)
        return self.out


# ---------------------------------------------------------------------------------------------
# public API


@dataclass
class PLASResult:
    order: np.ndarray  # (N,) int64: texel i (row-major) holds item order[i]
    width: int
    height: int
    seconds: float
    radii: int  # radius steps run
    passes: int  # swap passes run
    history: list = field(default_factory=list)  # (radius, passes, relative cost) per radius step

    @property
    def grid(self) -> np.ndarray:
        """(H, W) item index per cell, -1 for the unused tail."""
        g = np.full(self.width * self.height, -1, np.int64)
        g[: self.order.shape[0]] = self.order
        return g.reshape(self.height, self.width)


def grid_shape_for(n: int, width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """(W, H) for n items: both given -> as given; one given -> the other just large enough; none ->
    the SOG texture size."""
    if width is None and height is None:
        from splatlab.io import sog_texture_size
        return sog_texture_size(n)
    if width is None:
        width = int(math.ceil(n / height))
    if height is None:
        height = int(math.ceil(n / width))
    if width < 1 or height < 1 or width * height < n:
        raise ValueError(f"a {width}x{height} grid cannot hold {n} items")
    return int(width), int(height)


def standardize(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Zero-mean, unit-variance columns (constant columns become 0), optionally weighted; float32."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(0)
    sd = x.std(0)
    out = (x - mu) / np.where(sd > 1e-12, sd, 1.0)
    out[:, sd <= 1e-12] = 0.0
    if weights is not None:
        out *= np.asarray(weights, dtype=np.float64)[None, :]
    return np.ascontiguousarray(out, dtype=np.float32)


def plas_sort(
    x: np.ndarray, width: int | None = None, height: int | None = None, *,
    radius_start: float | None = None, radius_decay: float = 0.95, min_block: int = 16,
    max_block: int = 256, improvement_threshold: float = 1e-4, max_passes_per_radius: int = 4,
    init_order: np.ndarray | None = None, seed: int = 0, standardized: bool = False,
    time_budget: float | None = None, verbose: bool = False, threads: int | None = None,
) -> PLASResult:
    """Sort the rows of x (N, D) onto a W x H grid; returns the row-major order (see module doc).

    `x` is standardized per column unless `standardized=True` (pass pre-weighted features then).
    `init_order` (a permutation) starts from an existing layout (warm re-sort; combine with a small
    `radius_start`); otherwise the start is a seeded random shuffle. `threads`: numba threads (default: 1 below 2^18 cells, else all). `time_budget` (seconds) limits
    the passes per radius so the whole schedule fits (at least one pass per radius; when even that
    overruns, it jumps to radius 1).
    """
    t0 = time.perf_counter()
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"plas_sort needs an (N, D) array with N > 0, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("plas_sort: features contain NaN or inf")
    n, D = x.shape
    W, H = grid_shape_for(n, width, height)
    cells = W * H
    feats = np.ascontiguousarray(x, dtype=np.float32) if standardized else standardize(x)
    rng = np.random.default_rng(seed)
    if init_order is None:
        order0 = rng.permutation(n)
    else:
        order0 = np.asarray(init_order, dtype=np.int64)
        if order0.shape != (n,) or not np.array_equal(np.sort(order0), np.arange(n)):
            raise ValueError(f"init_order must be a permutation of {n} indices")
    idx = np.full(cells, -1, np.int64)
    idx[:n] = order0
    frozen = np.zeros(cells, np.bool_)
    frozen[n:] = True
    vals = np.zeros((cells, _padded_columns(D)), np.float32)  # zero padding: same costs, aligned rows
    vals[:n, :D] = feats[order0]
    if n < 4 or D == 0 or W * H < 4:
        return PLASResult(idx[:n].copy(), W, H, time.perf_counter() - t0, 0, 0)

    # small grids: thread start/barrier costs dominate (badly so on a busy machine) -> one thread
    if threads is None:
        threads = 1 if cells < SMALL_GRID else numba.get_num_threads()
    prev_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        return _plas_loop(vals, idx, frozen, n, W, H, D, t0, rng, radius_start, radius_decay, min_block, max_block,
                          improvement_threshold, max_passes_per_radius, seed, time_budget, verbose)
    finally:
        numba.set_num_threads(prev_threads)


SMALL_GRID = 1 << 18


def _padded_columns(d: int) -> int:
    """Row width for d features: the next power of two up to 16 (a 64-byte row is one cache line),
    then multiples of 16."""
    return 1 << max(0, (d - 1).bit_length()) if d <= 16 else -(-d // 16) * 16


def _plas_loop(vals, idx, frozen, n, W, H, D, t0, rng, radius_start, radius_decay, min_block, max_block,
               improvement_threshold, max_passes_per_radius, seed, time_budget, verbose) -> PLASResult:
    blur = _Blurrer(H, W, D, frozen, out_columns=vals.shape[1])
    r = float(radius_start) if radius_start is not None else max(H, W) / 2.0 - 1.0
    r = max(r, 1.0)
    passes = radii = 0
    history = []
    t_loop = time.perf_counter()
    it = 0
    while True:
        radii += 1
        ir = max(1, int(round(r)))
        B = int(min(max(min_block, 2 * ir + 1), max_block, max(H, W)))
        npass = 0
        rel = 0.0
        cap = max_passes_per_radius
        if time_budget is not None and passes:
            # spread what is left of the budget over the remaining radius steps (>= 1 pass each)
            left = time_budget - (time.perf_counter() - t0)
            steps_left = int(math.ceil(math.log(max(r, 1.0)) / -math.log(radius_decay))) + 1
            per_pass = (time.perf_counter() - t_loop) / passes
            cap = int(min(max_passes_per_radius, max(1, left / max(steps_left * per_pass, 1e-9))))
        while npass < cap:
            target = blur(vals, ir)
            sx = int(rng.integers(0, B))
            sy = int(rng.integers(0, B))
            gain, total = _swap_pass(vals, idx, target, frozen, H, W, B, sx, sy, seed * 1000003 + it, _PERMS)
            it += 1
            npass += 1
            rel = gain / total if total > 0 else 0.0
            if rel < improvement_threshold:
                break
        passes += npass
        history.append((ir, npass, float(rel)))
        if verbose:
            print(f"  plas radius {ir:5d} block {B:5d}: {npass} passes, last gain {rel:.2e}, "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
        if ir <= 1:
            break
        r *= radius_decay
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            r = min(r, 1.0)
    order = idx[:n].copy()
    return PLASResult(order, W, H, time.perf_counter() - t0, radii, passes, history)


# ---------------------------------------------------------------------------------------------
# features and quality


def sort_keys(scene, keys=("means", "sh0", "scales", "opacities", "quats"), weights=None) -> np.ndarray:
    """Standardized (N, D) sort features of a scene (`Gaussians` or io `SceneArrays`).

    means: sign(v) log(1 + |v|) (what SOG stores); scales: log; opacities: sigmoid; quats: unit,
    sign-canonical (w >= 0); sh0: raw DC. `weights` maps a key to a multiplier after standardizing.
    """
    from splatlab.io._common import as_arrays, normalize_quats, sigmoid

    s = as_arrays(scene)
    cols, wts = [], []
    for k in keys:
        if k == "means":
            m = s.means.astype(np.float64)
            f = np.sign(m) * np.log1p(np.abs(m))
        elif k == "scales":
            f = s.scales.astype(np.float64)
        elif k == "opacities":
            f = sigmoid(s.opacities)[:, None]
        elif k == "quats":
            q = normalize_quats(s.quats)
            f = q * np.where(q[:, :1] < 0, -1.0, 1.0)
        elif k == "sh0":
            f = s.sh0.reshape(len(s), 3).astype(np.float64)
        elif k == "shN":
            f = s.shN.reshape(len(s), -1).astype(np.float64)
        else:
            raise ValueError(f"unknown sort key {k!r} (means, sh0, scales, opacities, quats, shN)")
        f = f.reshape(len(s), -1)
        cols.append(f)
        wts += [float((weights or {}).get(k, 1.0))] * f.shape[1]
    return standardize(np.concatenate(cols, axis=1), np.asarray(wts))


def neighbour_distance(x: np.ndarray, order: np.ndarray, width: int, height: int | None = None) -> float:
    """Mean L2 distance between the rows of x at horizontally / vertically adjacent texels when
    item order[i] sits at texel i (row-major, width W); pairs touching empty texels are skipped."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    order = np.asarray(order, dtype=np.int64)
    W = int(width)
    H = int(height) if height is not None else int(math.ceil(n / W))
    g = np.full((H * W, x.shape[1]), np.nan, np.float32)
    g[: order.shape[0]] = x[order]
    g = g.reshape(H, W, -1)
    dh = np.linalg.norm(g[:, 1:] - g[:, :-1], axis=-1)
    dv = np.linalg.norm(g[1:] - g[:-1], axis=-1)
    d = np.concatenate([dh[np.isfinite(dh)], dv[np.isfinite(dv)]])
    return float(d.mean()) if d.size else 0.0


def set_threads(n: int | None) -> None:
    """Limit numba's worker threads (None -> leave as is)."""
    if n:
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))


def _spread2(v: np.ndarray) -> np.ndarray:
    """Spread the low 16 bits of v so bit i lands at bit 2i."""
    v = v.astype(np.uint64) & np.uint64(0xFFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x55555555)
    return v


def morton_grid_init(means: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    """A spatially coherent starting layout: the i-th splat along a 3-D Morton curve goes to the
    i-th used texel along a 2-D Morton curve of the grid (instead of the i-th texel row-major, as
    the plain Morton-ordered SOG does). Returns a row-major order usable as `init_order`."""
    from splatlab.io import morton_order

    means = np.asarray(means)
    n = means.shape[0]
    cells = np.arange(n)
    y, x = cells // int(width), cells % int(width)
    code2 = (_spread2(y) << np.uint64(1)) | _spread2(x)
    cell_rank = np.argsort(code2, kind="stable")  # used texels along the 2-D curve
    order = np.empty(n, np.int64)
    order[cell_rank] = morton_order(means)
    return order
