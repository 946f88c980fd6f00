"""Compiled CPU kernels: tile binning, front-to-back compositing and its hand-written backward.

All kernels work on one camera's screen-space Gaussians (numpy, float32):
  means2d (N,2), conics (N,3) = inverse 2D covariance (a,b,c), colors (N,D), opacities (N,),
  shapes (N,) generalized-exponential β (ignored unless `use_shape`), radii (N,2) int32.
Kernel falloff: G(σ) = exp(-σ) for Gaussians, exp(-σ^(β/2)) for GES, σ = ½ dᵀ Σ⁻¹ d.
Compositing rules (shared with the dense reference): α = min(0.99, o·G); α < 1/255 skipped;
a pixel stops before the Gaussian that would take its transmittance to ≤ 1e-4.

Layout and scheduling:
  * `prepare_gaussians` packs the per-Gaussian parameters once per camera into one float32 (N,8)
    table [mx, my, a, b, c, o, σ cut-off, β]; σ beyond the (conservative) cut-off means α < 1/255.
  * Tiles (16×16) are dealt to one worker per thread by cost (longest first onto the least
    loaded worker), so neither pass depends on numba's static range split.
  * Per tile row, the tile's depth-sorted list is compacted to the Gaussians whose σ cut-off
    ellipse actually crosses that row inside the tile (exact, conservative): a list of indices
    into the tile's packed parameters.
  * A row's 16 pixels walk its list together in blocks of CHUNK entries: σ, G and α of a block
    are computed by a branch-free loop LLVM vectorises (float32, FMA polynomial exp with
    exponent-bit scaling, relative error ~1e-7), then the block is composited into all 16
    pixels at once (float64 state, branch-free blends, vectorised), until every pixel of the
    row has stopped.
The backward pass rebuilds the identical row lists and α values (same functions, explicit FMA
rather than optimiser contraction), so its skip decisions are bit-identical to the forward's;
it walks each pixel back to front in float64.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

TILE = 16
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4
N_PARAMS = 8

_F_ALPHA_MIN = np.float32(ALPHA_MIN)
_F_ALPHA_MAX = np.float32(ALPHA_MAX)
_F_ZERO = np.float32(0.0)
_F_ONE = np.float32(1.0)
_F_HALF = np.float32(0.5)
_F_EXP_MAX = np.float32(80.0)  # exp(-80) ~ 2e-35: still a normal float32, and far below 1/255
_F_LOG2E = np.float32(1.4426950408889634)
_F_LN2_HI = np.float32(0.693359375)
_F_LN2_LO = np.float32(-2.12194440e-4)
_F_P0 = np.float32(5.0000001201e-1)
_F_P1 = np.float32(1.6666665459e-1)
_F_P2 = np.float32(4.1665795894e-2)
_F_P3 = np.float32(8.3334519073e-3)
_F_P4 = np.float32(1.3981999507e-3)
_F_P5 = np.float32(1.9875691500e-4)
_F_BIAS = np.float32(127.0)
_F_TWO23 = np.float32(8388608.0)


@intrinsic
def _bitcast32(typingctx, x):
    """Reinterpret 32 bits, no conversion: an int32 as a float32, a float32 as an int32."""
    if x == types.int32:
        sig, target = types.float32(types.int32), ir.FloatType()
    elif x == types.float32:
        sig, target = types.int32(types.float32), ir.IntType(32)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], target)

    return sig, codegen


@intrinsic
def fma_f32(typingctx, a, b, c):
    """a·b + c rounded once (llvm.fma.f32, one vfmadd on CPUs with FMA). Written out rather than
    left to the optimiser's contraction, so every pass that evaluates α gets the same bits."""
    if not (a == types.float32 and b == types.float32 and c == types.float32):
        return None
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [f32], ir.FunctionType(f32, [f32, f32, f32]))
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def exp_neg_f32(x):
    """exp(-x) in float32, branch-free (vectorisable): x is clamped to [0, 80], reduced by
    Cody–Waite to r ∈ [-ln2/2, ln2/2], e^-r by a degree-7 polynomial in FMA steps, 2^-n from
    exponent bits. Relative error ≤ 1e-7."""
    x = min(max(x, _F_ZERO), _F_EXP_MAX)
    nf = np.floor(x * _F_LOG2E + _F_HALF)
    y = fma_f32(nf, _F_LN2_LO, fma_f32(nf, _F_LN2_HI, -x))  # = -(x - n ln2)
    p = fma_f32(fma_f32(fma_f32(fma_f32(fma_f32(_F_P5, y, _F_P4), y, _F_P3), y, _F_P2), y, _F_P1), y, _F_P0)
    p = fma_f32(p, y * y, y) + _F_ONE
    return p * _bitcast32(np.int32((_F_BIAS - nf) * _F_TWO23))


_F_SQRT2 = np.float32(1.4142135623730951)
_F_LN2 = np.float32(0.6931471805599453)
_F_TINY = np.float32(1e-30)


@njit(cache=True, nogil=True, inline="always")
def log_f32(x):
    """ln(x) in float32 for x ≥ 1e-30 (smaller x is taken as 1e-30), branch-free (vectorisable):
    x = m·2^e with m ∈ [√½, √2) from the exponent bits, ln m = 2·atanh(t), t = (m-1)/(m+1) (|t| ≤
    0.172), by its odd series to t⁹. Relative error ~1e-7."""
    bits = _bitcast32(max(x, _F_TINY))
    e = np.float32(((bits >> 23) & 0xFF) - 127)
    m = _bitcast32(np.int32((bits & 0x7FFFFF) | 0x3F800000))  # [1, 2)
    big = m > _F_SQRT2
    m = m * _F_HALF if big else m
    e = e + _F_ONE if big else e
    t = (m - _F_ONE) / (m + _F_ONE)
    t2 = t * t
    series = fma_f32(fma_f32(fma_f32(fma_f32(np.float32(1.0 / 9.0), t2, np.float32(1.0 / 7.0)), t2,
                                     np.float32(0.2)), t2, np.float32(1.0 / 3.0)), t2, _F_ONE)
    return fma_f32(e, _F_LN2, np.float32(2.0) * t * series)


@njit(cache=True, nogil=True, inline="always")
def pow_f32(x, y):
    """x^y in float32 for x ≥ 0 (0 for x = 0) and |y·ln x| ≤ 80, branch-free (vectorisable):
    e^(y·ln x) through `exp_neg_f32` of |y·ln x| (a reciprocal for positive exponents). y = 1
    returns x exactly, so GES at β = 2 draws exactly what the Gaussian kernel draws."""
    z = y * log_f32(x)
    v = exp_neg_f32(abs(z))
    v = _F_ONE / v if z > _F_ZERO else v
    v = x if y == _F_ONE else v
    return v if x > _F_ZERO else _F_ZERO


@njit(cache=True, nogil=True)
def pixel_bounds(mx: float, my: float, rx: int, ry: int, width: int, height: int):
    """Inclusive pixel range whose centres (p + 0.5) fall within the radius box."""
    x0 = max(int(np.ceil(mx - rx - 0.5)), 0)
    x1 = min(int(np.floor(mx + rx - 0.5)), width - 1)
    y0 = max(int(np.ceil(my - ry - 0.5)), 0)
    y1 = min(int(np.floor(my + ry - 0.5)), height - 1)
    return x0, x1, y0, y1


RADIX_BITS = 11
BIN_CHUNKS = 16  # most chunks binning cuts the depth order into (enough for 4 threads x 4)


@njit(cache=True, nogil=True)
def _depth_order(depths, visible):
    """`visible` reordered by depth, stable (ties keep id order): LSD radix sort on the float32
    bit patterns mapped to order-preserving unsigned keys, three passes of 11 bits."""
    nv = visible.shape[0]
    bits = depths.view(np.uint32)
    keys = np.empty(nv, np.int64)
    for i in range(nv):
        b = np.int64(bits[visible[i]])
        keys[i] = 0xFFFFFFFF - b if b >= 0x80000000 else b + 0x80000000
    idx = visible.copy()
    keys2 = np.empty(nv, np.int64)
    idx2 = np.empty(nv, np.int64)
    mask = (1 << RADIX_BITS) - 1
    count = np.empty(mask + 2, np.int64)
    for shift in range(0, 32, RADIX_BITS):
        count[:] = 0
        for i in range(nv):
            count[((keys[i] >> shift) & mask) + 1] += 1
        for d in range(mask + 1):
            count[d + 1] += count[d]
        for i in range(nv):
            d = (keys[i] >> shift) & mask
            pos = count[d]
            count[d] = pos + 1
            keys2[pos] = keys[i]
            idx2[pos] = idx[i]
        keys, keys2 = keys2, keys
        idx, idx2 = idx2, idx
    return idx


@njit(cache=True, nogil=True)
def _bin_count(c, n_chunks, order, means2d, radii, width, height, boxes, counts):
    """Tile boxes of chunk c of the depth order, and its entry count per tile."""
    tiles_x = (width + TILE - 1) // TILE
    nv = order.shape[0]
    cnt = counts[c]
    for k in range(c * nv // n_chunks, (c + 1) * nv // n_chunks):
        g = order[k]
        x0, x1, y0, y1 = pixel_bounds(means2d[g, 0], means2d[g, 1], radii[g, 0], radii[g, 1], width, height)
        if x0 > x1 or y0 > y1:
            boxes[k, 0] = 1
            boxes[k, 1] = 0
            continue
        bx0 = x0 // TILE
        bx1 = x1 // TILE
        by0 = y0 // TILE
        by1 = y1 // TILE
        boxes[k, 0] = bx0
        boxes[k, 1] = bx1
        boxes[k, 2] = by0
        boxes[k, 3] = by1
        for ty in range(by0, by1 + 1):
            row = ty * tiles_x
            for tx in range(bx0, bx1 + 1):
                cnt[row + tx] += 1


@njit(cache=True, nogil=True)
def _bin_fill(c, n_chunks, order, width, boxes, fill, ids):
    """Write chunk c's ids into its slots (fill[t] = its next slot in tile t), in depth order."""
    tiles_x = (width + TILE - 1) // TILE
    nv = order.shape[0]
    for k in range(c * nv // n_chunks, (c + 1) * nv // n_chunks):
        bx0 = np.int64(boxes[k, 0])
        bx1 = np.int64(boxes[k, 1])
        if bx0 > bx1:
            continue
        by0 = np.int64(boxes[k, 2])
        by1 = np.int64(boxes[k, 3])
        g = np.int32(order[k])
        for ty in range(by0, by1 + 1):
            row = ty * tiles_x
            for tx in range(bx0, bx1 + 1):
                t = row + tx
                slot = fill[t]
                ids[slot] = g
                fill[t] = slot + 1


@njit(cache=True, parallel=True, nogil=True)
def _bin_count_chunks(n_chunks, order, means2d, radii, width, height, boxes, counts):
    for c in prange(n_chunks):
        _bin_count(np.int64(c), n_chunks, order, means2d, radii, width, height, boxes, counts)


@njit(cache=True, parallel=True, nogil=True)
def _bin_fill_chunks(n_chunks, order, width, boxes, fill, ids):
    for c in prange(n_chunks):
        _bin_fill(np.int64(c), n_chunks, order, width, boxes, fill[c], ids)


@njit(cache=True, nogil=True)
def bin_gaussians(means2d, radii, depths, width, height):
    """Per-tile lists of Gaussian ids, each sorted front to back (CSR: offsets, ids).

    Visible Gaussians are put in depth order once (radix sort), then cut into chunks of that
    order: each chunk counts its tile entries in parallel, a prefix sum over (tile, chunk) gives
    every chunk its slot in every tile's list, and the chunks fill their slots in parallel. The
    result is the same for any thread count: within a tile, ids are by (depth, id). Only the two
    chunk loops are parallel regions (small scenes, one chunk, stay on the calling thread)."""
    tiles_x = (width + TILE - 1) // TILE
    tiles_y = (height + TILE - 1) // TILE
    n_tiles = tiles_x * tiles_y
    n = means2d.shape[0]
    visible = np.empty(n, np.int64)
    nv = 0
    for g in range(n):
        if radii[g, 0] > 0 and radii[g, 1] > 0:
            visible[nv] = g
            nv += 1
    order = _depth_order(depths, visible[:nv])
    n_chunks = max(1, min(nv // 2048, BIN_CHUNKS))
    boxes = np.empty((nv, 4), np.int32)
    counts = np.zeros((n_chunks, n_tiles), np.int64)
    if n_chunks == 1:
        _bin_count(0, 1, order, means2d, radii, width, height, boxes, counts)
    else:
        _bin_count_chunks(n_chunks, order, means2d, radii, width, height, boxes, counts)
    offsets = np.empty(n_tiles + 1, np.int64)
    fill = np.empty((n_chunks, n_tiles), np.int64)
    running = 0
    for t in range(n_tiles):
        offsets[t] = running
        for c in range(n_chunks):
            fill[c, t] = running
            running += counts[c, t]
    offsets[n_tiles] = running
    ids = np.empty(running, np.int32)
    if n_chunks == 1:
        _bin_fill(0, 1, order, width, boxes, fill[0], ids)
    else:
        _bin_fill_chunks(n_chunks, order, width, boxes, fill, ids)
    return offsets, ids


@njit(cache=True, parallel=True, nogil=True)
def prepare_gaussians(means2d, conics, opacities, shapes, use_shape, rows):
    """Per-Gaussian tables for the compositing kernels (of `rows` (k,) int64 only when it is not
    empty: the rows a camera can draw; the other rows' entries are left unset, and no kernel reads
    them, since only rows with radii > 0 are binned and those are among `rows`).

    P (N,8) float32 [mx, my, a, b, c, o, σ cut-off S, β]: beyond S, α < 1/255 for sure (0.1% +
    1e-3 margin over the exact bound, far above float32 rounding of σ).
    Q (N,5) float64 [mx, my, b/a, (c - b²/a)/a, 2S/a]: the σ ≤ S ellipse meets row y (dy = my - y)
    in the x-interval centred at mx + (b/a)·dy with squared half-width 2S/a - (c - b²/a)/a·dy².
    """
    n = means2d.shape[0]
    use_rows = rows.shape[0] > 0
    n_items = rows.shape[0] if use_rows else n
    P = np.empty((n, N_PARAMS), np.float32)
    Q = np.empty((n, 5), np.float64)
    for j in prange(n_items):
        g = rows[j] if use_rows else np.int64(j)
        P[g, 0] = means2d[g, 0]
        P[g, 1] = means2d[g, 1]
        P[g, 2] = conics[g, 0]
        P[g, 3] = conics[g, 1]
        P[g, 4] = conics[g, 2]
        o = opacities[g]
        P[g, 5] = o
        beta = shapes[g] if use_shape else 2.0
        P[g, 7] = beta
        budget = np.log(max(np.float64(o), 1e-30) * 255.0)
        if use_shape and budget > 0.0:
            budget = budget ** (2.0 / beta)
        S = budget * 1.001 + 1e-3
        P[g, 6] = S
        a = np.float64(conics[g, 0])
        b = np.float64(conics[g, 1])
        c = np.float64(conics[g, 2])
        Q[g, 0] = means2d[g, 0]
        Q[g, 1] = means2d[g, 1]
        if a > 0.0 and np.isfinite(a) and np.isfinite(b) and np.isfinite(c):
            Q[g, 2] = b / a
            Q[g, 3] = (c - b * b / a) / a
            Q[g, 4] = 2.0 * np.float64(P[g, 6]) / a
        else:  # degenerate: never culled
            Q[g, 2] = 0.0
            Q[g, 3] = 0.0
            Q[g, 4] = np.inf
    return P, Q


@njit(cache=True, nogil=True)
def schedule_tiles(offsets, n_workers, width, height):
    """Deal tiles to workers, costliest first onto the least-loaded one (CSR: woff, tiles)."""
    tiles_x = (width + TILE - 1) // TILE
    n_tiles = offsets.shape[0] - 1
    cost = np.empty(n_tiles, np.float64)
    for t in range(n_tiles):
        tw = min(TILE, width - (t % tiles_x) * TILE)
        th = min(TILE, height - (t // tiles_x) * TILE)
        cost[t] = (offsets[t + 1] - offsets[t] + 4.0) * (tw * th)
    # costliest first, stable: the radix sort compiles in a tenth of np.argsort's (mergesort) time
    order = _depth_order(-cost.astype(np.float32), np.arange(n_tiles))
    load = np.zeros(n_workers, np.float64)
    owner = np.empty(n_tiles, np.int64)
    count = np.zeros(n_workers + 1, np.int64)
    for i in range(n_tiles):
        t = order[i]
        w = 0
        for v in range(1, n_workers):
            if load[v] < load[w]:
                w = v
        owner[t] = w
        load[w] += cost[t]
        count[w + 1] += 1
    woff = np.cumsum(count)
    fill = woff[:-1].copy()
    tiles = np.empty(n_tiles, np.int64)
    for i in range(n_tiles):
        t = order[i]
        tiles[fill[owner[t]]] = t
        fill[owner[t]] += 1
    return woff, tiles


SCAN = 64  # tile-list entries tested per culling step
CHUNK = 32  # list entries per α table (× TILE pixels of a row)


@njit(cache=True, nogil=True)
def _max_tile_len(offsets):
    maxn = 1
    for t in range(offsets.shape[0] - 1):
        maxn = max(maxn, offsets[t + 1] - offsets[t])
    return maxn


@njit(cache=True, nogil=True, inline="always")
def _tile_box(t, width, height):
    """Pixel box of tile t: first column, first row, last column, last row (inclusive)."""
    tiles_x = (width + TILE - 1) // TILE
    tx0 = (t % tiles_x) * TILE
    ty0 = (t // tiles_x) * TILE
    return tx0, ty0, min(tx0 + TILE, width) - 1, min(ty0 + TILE, height) - 1


@njit(cache=True, nogil=True, inline="always")
def _row_scratch(maxn, D):
    """One worker's scratch, shared by both passes (inlined, so the arrays are the caller's own
    allocations: returned from a call, LLVM could not tell them from the backward's gradient
    table, which cost the backward ~15-20%): the current tile's packed parameters
    (TP [k, 8] float32, TQ [5, k] float64, TC [k, D] float64), the current row's list (ridx =
    tile-list position of row entry j), the culling flags and the α tables [σ, G, α, σ^(β/2) (GES)]."""
    TP = np.empty((maxn, N_PARAMS), np.float32)
    TQ = np.empty((5, maxn), np.float64)
    TC = np.empty((maxn, D), np.float64)
    ridx = np.empty(maxn + SCAN, np.int64)
    keep = np.empty(SCAN, np.int64)
    tab = np.empty((4, CHUNK, TILE), np.float32)
    return TP, TQ, TC, ridx, keep, tab


@njit(cache=True, nogil=True)
def _pack_tile(start, k0, k1, ids, P, Q, colors, TP, TQ, TC):
    """Gather tile entries k0..k1-1's parameters / colours into contiguous scratch."""
    D = colors.shape[1]
    for k in range(k0, k1):
        g = ids[start + k]
        for q in range(N_PARAMS):
            TP[k, q] = P[g, q]
        for q in range(5):
            TQ[q, k] = Q[g, q]
        for ch in range(D):
            TC[k, ch] = colors[g, ch]


@njit(cache=True, nogil=True)
def _extend_row(S, kpos, m, target, n, packed, start, ids, P, Q, colors, fy, xlo, xhi):
    """The row builder both passes use. Lazily extend a row's list: scan the tile list from
    `kpos` and append the entries whose σ ≤ S ellipse meets the pixel centres x ∈ [xlo, xhi] of
    row y = fy (exact, padded by 0.01 px, float64), until the row list holds ≥ `target` entries
    or the tile list ends. Pixels usually stop long before the end of the list, so most of it is
    never scanned. Branch-free passes: keep flags (vectorised), then index compaction into ridx.
    The tile's parameters are packed lazily too (`packed` entries so far, shared by its rows).
    Returns the new (kpos, m, packed)."""
    TP, TQ, TC, ridx, keep, _tab = S
    while m < target and kpos < n:
        kend = min(n, kpos + SCAN)
        if kend > packed:
            _pack_tile(start, packed, kend, ids, P, Q, colors, TP, TQ, TC)
            packed = kend
        for k in range(kpos, kend):
            dy = TQ[1, k] - fy
            xc = TQ[0, k] + TQ[2, k] * dy
            hh = TQ[4, k] - TQ[3, k] * dy * dy
            d = max(max(xlo - xc, xc - xhi) - 0.01, 0.0)
            keep[k - kpos] = np.int64((hh >= 0.0) & (d * d <= hh))
        for k in range(kpos, kend):
            ridx[m] = k
            m += keep[k - kpos]
        kpos = kend
    return kpos, m, packed


@njit(cache=True, nogil=True, inline="always")
def _alpha_table(S, s0, nb, x0f, fy32, use_shape, aux):
    """α of row entries s0 .. s0+nb-1 at the TILE pixel centres x0f + 0..15 of row fy32, into
    tab[2, j, x]; α is stored as 0 where it is skipped (σ < 0 or α < 1/255), so both passes
    take identical skip decisions from the same table. With `aux` (backward) also σ and G(σ)
    into tab[0], tab[1]; GES (`use_shape`) always fills tab[0] and tab[3] = σ^(β/2) (float32
    `pow_f32`, vectorised; the float64 pow it replaced made GES 5x slower than Gaussians). Each
    entry's parameters are read once from the tile's packed table (σ(dx) = dx·(½a·dx + b·dy) + ½c·dy², in FMA steps); the inner loop over pixels has no
    array loads, so LLVM vectorises it without alias checks. No array views are taken here:
    in a per-block function each one costs a reference-count call pair."""
    TP = S[0]
    ridx = S[3]
    tab = S[5]
    for j in range(nb):
        k = ridx[s0 + j]
        dy = TP[k, 1] - fy32
        mx = TP[k, 0]
        ha = _F_HALF * TP[k, 2]
        bd = TP[k, 3] * dy
        q = _F_HALF * TP[k, 4] * dy * dy
        o = TP[k, 5]
        if use_shape:
            hb = _F_HALF * TP[k, 7]
            for x in range(TILE):
                dx = mx - (x0f + np.float32(x))
                s = fma_f32(dx, fma_f32(ha, dx, bd), q)
                tab[0, j, x] = s
                tab[3, j, x] = pow_f32(s, hb)  # σ^(β/2); 0 where σ ≤ 0
            for x in range(TILE):
                v = exp_neg_f32(tab[3, j, x])
                tab[1, j, x] = v
                a = min(_F_ALPHA_MAX, o * v)
                tab[2, j, x] = a if (tab[0, j, x] >= _F_ZERO) & (a >= _F_ALPHA_MIN) else _F_ZERO
        elif aux:
            for x in range(TILE):
                dx = mx - (x0f + np.float32(x))
                s = fma_f32(dx, fma_f32(ha, dx, bd), q)
                tab[0, j, x] = s
                v = exp_neg_f32(s)
                tab[1, j, x] = v
                a = min(_F_ALPHA_MAX, o * v)
                tab[2, j, x] = a if (s >= _F_ZERO) & (a >= _F_ALPHA_MIN) else _F_ZERO
        else:
            for x in range(TILE):
                dx = mx - (x0f + np.float32(x))
                s = fma_f32(dx, fma_f32(ha, dx, bd), q)
                a = min(_F_ALPHA_MAX, o * exp_neg_f32(s))
                tab[2, j, x] = a if (s >= _F_ZERO) & (a >= _F_ALPHA_MIN) else _F_ZERO


# The forward's per-row pixel state `st` [5 + D, TILE] float64, 16 pixels per row. Float64 like
# the backward's walk, so stop decisions at T = 1e-4 and 1 - T of nearly transparent pixels do
# not hinge on float32 rounding; one array, so LLVM sees fixed offsets of one base and
# vectorises the pixel loops without alias checks.
_S_T = 0      # transmittance; 0 once the pixel has stopped (a live pixel always has T > 1e-4)
_S_TSTOP = 1  # transmittance at the stop
_S_LAST = 2   # row-list index of the last contributing entry (-1: none)
_S_STOP = 3   # row-list index the pixel stopped before (NO_STOP: never)
_S_W = 4      # this entry's compositing weight α·T (general-D path)
_S_C = 5      # colour accumulators, D rows
NO_STOP = 2.0 ** 40  # larger than any row list; (j - NO_STOP) stays exact in float64


@njit(cache=True, nogil=True, inline="always")
def _composite_pixel(st, tab, jj, x, jf):
    """Composite table entry jj (row-list index jf) into pixel x's state; returns its weight
    α·T. Branch-free: flags are 0/1 values chosen by selects (LLVM emits and-masks; a bool cast
    to float64 costs five instructions, a conditional store a masked store), so the calling
    pixel loop vectorises: a pixel whose transmittance would fall to ≤ 1e-4 stops
    before the entry; its T is parked in _S_TSTOP and set to 0, which makes every later step a
    no-op for it (a live pixel always has T > 1e-4)."""
    al = np.float64(tab[2, jj, x])
    tr = st[_S_T, x]
    nt = tr * (1.0 - al)
    okf = 1.0 if nt > T_MIN else 0.0  # 0 for stopped pixels too (their T is 0)
    stopf = (1.0 if tr > 0.0 else 0.0) - okf
    ae = al * okf
    st[_S_T, x] = nt * okf
    st[_S_TSTOP, x] = st[_S_TSTOP, x] + (tr - st[_S_TSTOP, x]) * stopf
    st[_S_STOP, x] = st[_S_STOP, x] + (jf - st[_S_STOP, x]) * stopf
    lx = st[_S_LAST, x]
    st[_S_LAST, x] = lx + (jf - lx) * (1.0 if ae > 0.0 else 0.0)
    return ae * tr


@njit(cache=True, parallel=True, nogil=True)
def rasterize_forward(offsets, ids, P, Q, colors, use_shape, background, width, height, woff, wtiles,
                      out_color, out_trans, out_last, out_evals, out_tile_evals):
    """Composite every tile, row by row: α tables for CHUNK row-list entries × the row's 16
    pixels, then those entries composited into all 16 pixels at once, in depth order (the pixel
    loop vectorises). Skipped entries have α = 0 in the table, which leaves
    transmittance and colour unchanged. A row ends when all its pixels have stopped or its
    list is exhausted.

    Writes colour (H,W,D), final transmittance, the row-list index of the last contributing
    Gaussian (-1 if none) for the backward pass, and two pair counts for the benchmark:
    `out_evals` = row-list entries the pixel evaluated up to its stop (culled entries are not
    counted), `out_tile_evals` = entries of the tile's depth-sorted list up to the same stop
    (what a plain per-tile rasterizer walks; the whole list if the pixel never stops).
    """
    D = colors.shape[1]
    maxn = _max_tile_len(offsets)
    n_workers = woff.shape[0] - 1
    for w in prange(n_workers):
        _forward_worker(np.int64(w), maxn, offsets, ids, P, Q, colors, use_shape, background, width, height, woff,
                        wtiles, out_color, out_trans, out_last, out_evals, out_tile_evals)


@njit(cache=True, nogil=True)
def _forward_worker(w, maxn, offsets, ids, P, Q, colors, use_shape, background, width, height, woff, wtiles,
                    out_color, out_trans, out_last, out_evals, out_tile_evals):
    """Worker w's tiles of `rasterize_forward` (a serial function of its own, so numba's parallel
    passes see only the worker loop: they cost seconds of compile time per statement in it)."""
    D = colors.shape[1]
    S = _row_scratch(maxn, D)
    TC = S[2]
    ridx = S[3]
    tab = S[5]
    st = np.empty((_S_C + D, TILE), np.float64)
    for ti in range(woff[w], woff[w + 1]):
        t = wtiles[ti]
        start = offsets[t]
        n = offsets[t + 1] - start
        packed = 0
        tx0, ty0, tx1, ty1 = _tile_box(t, width, height)
        npx = tx1 - tx0 + 1
        x0f = np.float32(tx0 + 0.5)
        for py in range(ty0, ty1 + 1):
            fy32 = np.float32(py + 0.5)
            kpos = 0
            m = 0
            for x in range(TILE):
                st[_S_T, x] = 1.0 if x < npx else 0.0  # columns past the image: inert
                st[_S_TSTOP, x] = 1.0
                st[_S_LAST, x] = -1.0
                st[_S_STOP, x] = NO_STOP
                for ch in range(D):
                    st[_S_C + ch, x] = 0.0
            active = npx
            s0 = 0
            while active > 0:
                kpos, m, packed = _extend_row(S, kpos, m, s0 + CHUNK, n, packed, start, ids, P, Q, colors,
                                              py + 0.5, tx0 + 0.5, tx1 + 0.5)
                if m <= s0:
                    break
                nb = min(CHUNK, m - s0)
                _alpha_table(S, s0, nb, x0f, fy32, use_shape, False)
                for jj in range(nb):
                    k = ridx[s0 + jj]
                    jf = np.float64(s0 + jj)
                    if D == 3:  # RGB: one pixel loop (split in two, LLVM no longer vectorises it)
                        c0 = TC[k, 0]
                        c1 = TC[k, 1]
                        c2 = TC[k, 2]
                        for x in range(TILE):
                            wg = _composite_pixel(st, tab, jj, x, jf)
                            st[_S_C, x] += wg * c0
                            st[_S_C + 1, x] += wg * c1
                            st[_S_C + 2, x] += wg * c2
                    else:
                        for x in range(TILE):
                            st[_S_W, x] = _composite_pixel(st, tab, jj, x, jf)
                        for ch in range(D):
                            col = TC[k, ch]
                            for x in range(TILE):
                                st[_S_C + ch, x] += st[_S_W, x] * col
                active = 0
                for x in range(npx):
                    active += st[_S_T, x] > 0.0
                s0 += nb
            for x in range(npx):
                px = tx0 + x
                stop = np.int64(st[_S_STOP, x])
                stopped = stop < m
                trans = st[_S_TSTOP, x] if stopped else st[_S_T, x]
                for ch in range(D):
                    out_color[py, px, ch] = st[_S_C + ch, x] + trans * background[ch]
                out_trans[py, px] = trans
                out_last[py, px] = np.int64(st[_S_LAST, x])
                out_evals[py, px] = stop + 1 if stopped else m
                out_tile_evals[py, px] = ridx[stop] + 1 if stopped else n


@njit(cache=True, parallel=True, nogil=True)
def rasterize_backward(offsets, ids, P, Q, colors, use_shape, background, width, height, woff, wtiles,
                       out_trans, out_last, grad_color, grad_alpha, n_gauss):
    """Walk each pixel's contributors back to front, accumulating per-Gaussian gradients.

    Same row builder and α tables as the forward, walked in CHUNK blocks from the row's last
    contributor down. Each worker (one per thread, tiles as scheduled by `schedule_tiles`) has
    its own accumulator, so no atomics are needed and the result is deterministic.
    Returns (n_workers, N, 10 + D) partial sums: [mean2d x,y | conic a,b,c | opacity | β |
    |mean2d| x,y (absgrad) | spare | colour D] which the caller sums over workers.
    """
    D = colors.shape[1]
    maxn = _max_tile_len(offsets)
    n_workers = woff.shape[0] - 1
    NQ = 10 + D
    partial = np.zeros((n_workers, n_gauss, NQ), np.float64)
    for w in prange(n_workers):
        _backward_worker(np.int64(w), maxn, partial[w], offsets, ids, P, Q, colors, use_shape, background, width,
                         height, woff, wtiles, out_trans, out_last, grad_color, grad_alpha)
    return partial


@njit(cache=True, nogil=True)
def _backward_worker(w, maxn, partial, offsets, ids, P, Q, colors, use_shape, background, width, height, woff,
                     wtiles, out_trans, out_last, grad_color, grad_alpha):
    """Worker w's tiles of `rasterize_backward`, accumulated into its own (N, 10 + D) `partial`
    (serial, for the compile time; see `_forward_worker`)."""
    D = colors.shape[1]
    NQ = 10 + D
    S = _row_scratch(maxn, D)
    TP = S[0]
    TC = S[2]
    ridx = S[3]
    tab = S[5]
    tsg = tab[0]; tvis = tab[1]; tal = tab[2]
    G = np.empty((maxn, NQ), np.float64)
    behind = np.empty((TILE, D), np.float64)
    gcol = np.empty((TILE, D), np.float64)
    ptrans = np.empty(TILE, np.float64)
    pgat = np.empty(TILE, np.float64)
    plast = np.empty(TILE, np.int64)
    for ti in range(woff[w], woff[w + 1]):
        t = wtiles[ti]
        start = offsets[t]
        n = offsets[t + 1] - start
        if n == 0:
            continue
        packed = 0
        zeroed = 0
        tx0, ty0, tx1, ty1 = _tile_box(t, width, height)
        npx = tx1 - tx0 + 1
        x0f = np.float32(tx0 + 0.5)
        for py in range(ty0, ty1 + 1):
            fy32 = np.float32(py + 0.5)
            jmax = -1
            for x in range(npx):
                jmax = max(jmax, np.int64(out_last[py, tx0 + x]))
            if jmax < 0:
                continue
            kpos, m, packed = _extend_row(S, 0, 0, jmax + 1, n, packed, start, ids, P, Q, colors,
                                          py + 0.5, tx0 + 0.5, tx1 + 0.5)
            for k in range(zeroed, packed):
                for q in range(NQ):
                    G[k, q] = 0.0
            zeroed = max(zeroed, packed)
            for x in range(npx):
                px = tx0 + x
                plast[x] = out_last[py, px]
                t_final = out_trans[py, px]
                ptrans[x] = t_final
                bg_dot = 0.0
                for ch in range(D):
                    behind[x, ch] = 0.0
                    gcol[x, ch] = grad_color[py, px, ch]
                    bg_dot += gcol[x, ch] * background[ch]
                pgat[x] = (grad_alpha[py, px] - bg_dot) * t_final
            e0 = jmax + 1
            while e0 > 0:
                s0 = max(0, e0 - CHUNK)
                nb = e0 - s0
                _alpha_table(S, s0, nb, x0f, fy32, use_shape, True)
                for x in range(npx):
                    jl = plast[x]
                    if jl < s0:
                        continue
                    trans = ptrans[x]
                    g_alpha_term = pgat[x]
                    fx32 = x0f + np.float32(x)
                    # RGB: the pixel's colour gradient and the colour behind in locals, not reloaded
                    # after every store into G (which LLVM cannot tell apart from `behind`)
                    gc0 = gcol[x, 0]; gc1 = gcol[x, min(1, D - 1)]; gc2 = gcol[x, min(2, D - 1)]
                    b0 = behind[x, 0]; b1 = behind[x, min(1, D - 1)]; b2 = behind[x, min(2, D - 1)]
                    for jj in range(min(jl, e0 - 1) - s0, -1, -1):
                        a32 = tal[jj, x]
                        if a32 < _F_ALPHA_MIN:
                            continue
                        j = s0 + jj
                        k = ridx[j]
                        alpha = np.float64(a32)
                        one_minus = 1.0 - alpha
                        inv_om = 1.0 / one_minus
                        t_i = trans * inv_om
                        wgt = alpha * t_i
                        if D == 3:
                            ck0 = TC[k, 0]; ck1 = TC[k, 1]; ck2 = TC[k, 2]
                            G[k, 10] += wgt * gc0
                            G[k, 11] += wgt * gc1
                            G[k, 12] += wgt * gc2
                            v_alpha = (gc0 * (ck0 * t_i - b0 * inv_om) + gc1 * (ck1 * t_i - b1 * inv_om)
                                       + gc2 * (ck2 * t_i - b2 * inv_om))
                            b0 += ck0 * wgt
                            b1 += ck1 * wgt
                            b2 += ck2 * wgt
                        else:
                            v_alpha = 0.0
                            for ch in range(D):
                                gc = gcol[x, ch]
                                ck = TC[k, ch]
                                G[k, 10 + ch] += wgt * gc
                                v_alpha += gc * (ck * t_i - behind[x, ch] * inv_om)
                                behind[x, ch] += ck * wgt
                        v_alpha += g_alpha_term * inv_om
                        trans = t_i
                        o32 = TP[k, 5]
                        v32 = tvis[jj, x]
                        if o32 * v32 > _F_ALPHA_MAX:
                            continue
                        vv = np.float64(v32)
                        o = np.float64(o32)
                        G[k, 5] += vv * v_alpha
                        v_vis = o * v_alpha
                        if use_shape:
                            sigma = np.float64(tsg[jj, x])
                            beta = np.float64(TP[k, 7])
                            if sigma > 1e-12:  # σ^(β/2) from the α table; ln σ in float32 too
                                powv = np.float64(tab[3, jj, x])
                                v_sigma = -v_vis * vv * 0.5 * beta * powv / sigma
                                G[k, 6] += -v_vis * vv * powv * np.float64(log_f32(tsg[jj, x])) * 0.5
                            else:
                                v_sigma = 0.0
                        else:
                            v_sigma = -v_vis * vv
                        dx = np.float64(TP[k, 0] - fx32)
                        dy = np.float64(TP[k, 1] - fy32)
                        a = np.float64(TP[k, 2])
                        b = np.float64(TP[k, 3])
                        c = np.float64(TP[k, 4])
                        G[k, 2] += 0.5 * v_sigma * dx * dx
                        G[k, 3] += v_sigma * dx * dy
                        G[k, 4] += 0.5 * v_sigma * dy * dy
                        gx = v_sigma * (a * dx + b * dy)
                        gy = v_sigma * (b * dx + c * dy)
                        G[k, 0] += gx
                        G[k, 1] += gy
                        G[k, 7] += abs(gx)
                        G[k, 8] += abs(gy)
                    ptrans[x] = trans
                    if D == 3:
                        behind[x, 0] = b0
                        behind[x, 1] = b1
                        behind[x, 2] = b2
                e0 = s0
        for k in range(zeroed):
            g = ids[start + k]
            for q in range(NQ):
                partial[g, q] += G[k, q]


@njit(cache=True, parallel=True, nogil=True)
def sum_partials(partial, out):
    """out[g, q] = Σ_w partial[w, g, q] (workers in order, float64, stored as out's dtype), in
    parallel over Gaussians: the backward's per-worker accumulators reduced without numpy's
    single-threaded sum and a separate float32 conversion."""
    n_workers, n, nq = partial.shape
    n_chunks = (n + 4095) // 4096
    for c in prange(n_chunks):
        for g in range(c * 4096, min(n, (c + 1) * 4096)):
            for q in range(nq):
                s = partial[0, g, q]
                for w in range(1, n_workers):
                    s += partial[w, g, q]
                out[g, q] = s
