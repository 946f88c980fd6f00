"""Plane-sweep stereo initialisation: surface points from the training views of a capture without a
point cloud (the default there, in place of SIFT triangulation: `init.use_sweep`).

Small or low-resolution captures (a 96² video rig, a textureless scene) give SIFT triangulation a
handful of points, and a random initialisation inside the ball the cameras look at neither covers
what lies outside that ball (a floor reaching to the horizon) nor puts anything *on* a surface: the
optimiser then explains the floor with the background points beyond it, which fit every training
view from its own line of sight and blur in a held-out one (issue 15, `scenes/README.md`).

For every reference view, `sweep_depths` tests `n_depths` fronto-parallel planes (uniform in
disparity) against its `neighbours` nearest views: the reference pixel's colour is compared with the
neighbour's colour where the plane maps it, the absolute difference is box-filtered (a small patch)
and, per pixel, the best two neighbours are averaged (robust to one occlusion). A pixel keeps its
best depth when the match is good (`max_cost`) and *distinct*: the median cost over the depths is
at least `min_contrast` above it, which rejects uniform regions (sky, flat walls) whose depth any
plane explains. `sweep_points` back-projects the kept pixels, keeps those a second view's depth map
confirms (`consistency`, relative depth), and returns points and colours. Views are averaged down
to `max_side` pixels and at most `max_refs` cameras take part, which keeps the sweep to about ten
seconds of CPU on a 100-view 256² capture (the per-plane costs and the per-pixel choice are
compiled: 24 s in torch ops).

Multi-view video: the static background comes from each physical camera's per-pixel temporal median
(moving objects drop out); moving pixels (far from that median) are swept frame by frame against
the other cameras' same frame and get that frame's time, so `--method temporal` can start them in
their moment (`Method.place_in_time`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange
from torch import Tensor

from splatlab.data import SceneData


def _to_pixels(cam: Tensor, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel coordinates (u, v, continuous, pixel centres at +0.5) and depth of camera-frame points."""
    z = cam[..., 2]
    zs = z.clamp_min(1e-6)
    return K[0, 0] * cam[..., 0] / zs + K[0, 2], K[1, 1] * cam[..., 1] / zs + K[1, 2], z


def _project(points: Tensor, viewmat: Tensor, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`_to_pixels` of world points."""
    return _to_pixels(points @ viewmat[:3, :3].T + viewmat[:3, 3], K)


def _rays(viewmat: Tensor, K: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Camera centre and per-pixel world directions scaled to unit camera-z depth, (H, W, 3)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")
    d = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    return -R.T @ t, d @ R  # d @ R == (R.T @ d.T).T


def neighbours_of(viewmats: Tensor, k: int) -> list[list[int]]:
    """For each camera, the `k` others with the most similar viewing direction (ties: nearest)."""
    c2w = torch.linalg.inv(viewmats.double())
    axes = F.normalize(c2w[:, :3, 2], dim=1)
    centers = c2w[:, :3, 3]
    sim = axes @ axes.T - 1e-3 * torch.cdist(centers, centers) / (torch.cdist(centers, centers).max() + 1e-12)
    sim.fill_diagonal_(-math.inf)
    k = min(k, len(viewmats) - 1)
    return sim.topk(k, dim=1).indices.tolist()


def sweep_depths(ref: Tensor, ref_vm: Tensor, ref_K: Tensor, others: list[tuple[Tensor, Tensor, Tensor]],
                 near: float, far: float, n_depths: int = 64, patch: int = 5, max_cost: float = 0.06,
                 min_contrast: float = 0.04, mask: Tensor | None = None) -> Tensor:
    """Best depth per reference pixel (H, W), NaN where the match is poor or ambiguous.

    `others` are (image, viewmat, K) of the neighbour views; costs are mean absolute colour
    differences in [0, 1], box-filtered over `patch`², averaged over the best two neighbours."""
    h, w = ref.shape[:2]
    origin, dirs = _rays(ref_vm, ref_K, w, h)
    depths = 1.0 / torch.linspace(1.0 / near, 1.0 / far, n_depths)
    inside = box_sums(torch.ones(1, h, w), patch)[0]  # in-image pixels of each patch
    sums = []  # per neighbour, (2D, H, W): patch sums of the costs of valid pixels, then of valid pixels
    for img, vm, K in others:
        # the plane at depth d maps the pixel to a + d·b in the neighbour's camera frame
        a = vm[:3, :3] @ origin + vm[:3, 3]
        b = dirs @ vm[:3, :3].T  # (H, W, 3)
        sums.append(box_sums(plane_costs(a, b, depths, K, img, ref), patch))
    out = best_depths(torch.stack(sums), inside, depths, max_cost, min_contrast)
    if mask is not None:
        out = torch.where(mask, out, torch.full_like(out, float("nan")))
    return out


def _f32(t: Tensor) -> np.ndarray:
    """A CPU tensor as the C-contiguous float32 array the compiled passes take (no copy if it is one)."""
    return t.detach().to(torch.float32).contiguous().numpy()


def best_depths(sums: Tensor, inside: Tensor, depths: Tensor, max_cost: float, min_contrast: float) -> Tensor:
    """(H, W) depth of the lowest cost per pixel, NaN where it is not good or not distinct.

    A neighbour's cost at a depth is the patch mean of its valid pixels' costs, where over half the
    patch's in-image pixels (`inside`) are valid; the pixel's cost is the mean of the best two
    neighbours' (infinite unless both are finite), or the only neighbour's. On CPU one compiled
    pass per pixel (`_best_depths`; the torch ops here, topk and nanmedian over (N, D, H, W), took
    half of the sweep once the costs were compiled)."""
    if sums.device.type == "cpu":
        out = np.empty(sums.shape[2:], np.float32)
        _best_depths(_f32(sums), _f32(inside), _f32(depths), max_cost, min_contrast, out)
        return torch.from_numpy(out)
    return best_depths_torch(sums, inside, depths, max_cost, min_contrast)


def best_depths_torch(sums: Tensor, inside: Tensor, depths: Tensor, max_cost: float, min_contrast: float) -> Tensor:
    """`best_depths` in torch ops (other devices; the tests' reference)."""
    num, den = sums.split(depths.shape[0], dim=1)
    c = torch.where(den > 0.5 * inside, num / den.clamp_min(1e-6), torch.full_like(num, math.inf))  # (N, D, H, W)
    if len(c) >= 2:
        c = c.topk(2, dim=0, largest=False).values
        c = torch.where(torch.isfinite(c[1]), c.mean(0), torch.full_like(c[0], math.inf))
    else:
        c = c[0]
    best, idx = c.min(0)
    finite = torch.where(torch.isfinite(c), c, torch.full_like(c, float("nan")))
    med = finite.nanmedian(0).values
    ok = torch.isfinite(best) & (best < max_cost) & (med - best > min_contrast)
    out = depths[idx]
    return torch.where(ok, out, torch.full_like(out, float("nan")))


@njit(cache=True, parallel=True, nogil=True)
def _best_depths(sums, inside, depths, max_cost, min_contrast, out):
    for y in prange(out.shape[0]):
        _best_depths_row(np.int64(y), sums, inside, depths, max_cost, min_contrast, out)


@njit(cache=True, nogil=True)
def _best_depths_row(y, sums, inside, depths, max_cost, min_contrast, out):
    """Row y of `best_depths` (a serial body: numba re-types a parallel loop's body). The costs
    of the row are formed plane by plane (contiguous reads), then each pixel's depths are scanned."""
    N = sums.shape[0]
    D = depths.shape[0]
    W = out.shape[1]
    c = np.empty((D, W), np.float32)
    for d in range(D):
        for x in range(W):
            half = 0.5 * inside[y, x]
            lo = np.float32(np.inf)  # the two lowest neighbour costs
            lo2 = np.float32(np.inf)
            for n in range(N):
                den = sums[n, D + d, y, x]
                cn = sums[n, d, y, x] / max(den, np.float32(1e-6)) if den > half else np.float32(np.inf)
                if cn < lo:
                    lo2 = lo
                    lo = cn
                elif cn < lo2:
                    lo2 = cn
            if N >= 2:
                c[d, x] = (lo + lo2) / np.float32(2.0) if lo2 < np.inf else np.float32(np.inf)
            else:
                c[d, x] = lo
    finite = np.empty(D, np.float32)
    for x in range(W):
        best = np.float32(np.inf)
        best_d = 0
        k = 0
        for d in range(D):
            cd = c[d, x]
            if cd < best:
                best = cd
                best_d = d
            if cd < np.inf:
                finite[k] = cd
                k += 1
        ok = False
        if best < np.inf and best < np.float32(max_cost):  # the lower median, as torch's nanmedian
            ok = _select(finite, k, (k - 1) // 2) - best > np.float32(min_contrast)
        out[y, x] = depths[best_d] if ok else np.nan


@njit(cache=True, nogil=True)
def _select(v, k, r):
    """The r-th smallest of v[:k] (reorders it): Hoare's selection, average O(k). Written out
    because numba's np.sort takes seconds to compile, a first run's time."""
    lo, hi = 0, k - 1
    while lo < hi:
        pivot = v[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if r <= j:
            hi = j
        elif r >= i:
            lo = i
        else:
            return v[r]
    return v[r]


def plane_costs(a: Tensor, b: Tensor, depths: Tensor, K: Tensor, img: Tensor, ref: Tensor) -> Tensor:
    """(2D, H, W) float32: for each depth plane, the mean absolute colour difference between the
    reference pixel (`ref` (H, W, 3)) and the neighbour image `img` (bilinear) where the pixel's
    point a + depth·b[y, x] (neighbour camera frame) projects, zeroed where it falls outside the
    image or behind the camera; then the D validity planes (1 or 0).

    On CPU one compiled pass (`_plane_costs`): in torch this is ~25 elementwise passes over
    (D, H, W) planes plus `grid_sample`, most of the sweep's time, and with two threads on two busy
    cores each pass waits for the slower thread (robot: 24 s on one thread, 121 s on two beside
    another job). The torch version is kept for other devices and as the tests' reference."""
    D, (h, w) = depths.shape[0], b.shape[:2]
    if a.device.type == "cpu":
        out = np.empty((2 * D, h, w), np.float32)
        _plane_costs(*[_f32(t) for t in (a, b, depths, K, img[..., :3], ref[..., :3])], out)
        return torch.from_numpy(out)
    return plane_costs_torch(a, b, depths, K, img, ref)


def plane_costs_torch(a: Tensor, b: Tensor, depths: Tensor, K: Tensor, img: Tensor, ref: Tensor) -> Tensor:
    """`plane_costs` in torch ops (grid_sample with border padding: in-image samples only count)."""
    D, (h, w) = depths.shape[0], b.shape[:2]
    u, v, z = _to_pixels(a + depths[:, None, None, None] * b, K)  # (D, H, W) each
    ih, iw = img.shape[:2]
    grid = torch.stack([u / iw * 2 - 1, v / ih * 2 - 1], -1).reshape(1, D * h, w, 2)
    col = F.grid_sample(img[..., :3].permute(2, 0, 1)[None], grid, align_corners=False, mode="bilinear",
                        padding_mode="border")[0].reshape(3, D, h, w)
    diff = (col - ref[..., :3].permute(2, 0, 1)[:, None]).abs().mean(0)  # (D, H, W)
    valid = ((u >= 0.5) & (u <= iw - 0.5) & (v >= 0.5) & (v <= ih - 0.5) & (z > 0)).float()
    return torch.cat([diff * valid, valid])


@njit(cache=True, parallel=True, nogil=True)
def _plane_costs(a, b, depths, K, img, ref, out):
    for di in prange(depths.shape[0]):
        _plane_cost(np.int64(di), a, b, depths, K, img, ref, out)


@njit(cache=True, nogil=True)
def _plane_cost(di, a, b, depths, K, img, ref, out):
    """Depth plane di of `plane_costs` (a serial body: numba re-types a parallel loop's body)."""
    D = depths.shape[0]
    H, W = b.shape[0], b.shape[1]
    ih, iw = img.shape[0], img.shape[1]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    dep = depths[di]
    for y in range(H):
        for x in range(W):
            X = a[0] + dep * b[y, x, 0]
            Y = a[1] + dep * b[y, x, 1]
            Z = a[2] + dep * b[y, x, 2]
            zs = max(Z, np.float32(1e-6))
            u = fx * X / zs + cx
            v = fy * Y / zs + cy
            if Z > 0 and u >= 0.5 and u <= iw - 0.5 and v >= 0.5 and v <= ih - 0.5:
                sx = u - 0.5  # the sample's position in pixel-centre coordinates, inside [0, iw - 1]
                sy = v - 0.5
                x0 = min(np.int64(sx), iw - 1)
                y0 = min(np.int64(sy), ih - 1)
                x1 = min(x0 + 1, iw - 1)
                y1 = min(y0 + 1, ih - 1)
                wx = sx - x0
                wy = sy - y0
                diff = 0.0
                for ch in range(3):
                    top = img[y0, x0, ch] + wx * (img[y0, x1, ch] - img[y0, x0, ch])
                    bottom = img[y1, x0, ch] + wx * (img[y1, x1, ch] - img[y1, x0, ch])
                    diff += abs(top + wy * (bottom - top) - ref[y, x, ch])
                out[di, y, x] = diff / 3.0
                out[D + di, y, x] = 1.0
            else:
                out[di, y, x] = 0.0
                out[D + di, y, x] = 0.0


def box_sums(x: Tensor, patch: int) -> Tensor:
    """Sums over `patch`² windows (zero padding, same size) of (P, H, W) float32 planes. On CPU the
    compiled separable filter of `splatlab.render.cpu.blur` (avg_pool2d took a third of the sweep)."""
    if x.device.type == "cpu":
        from splatlab.render.cpu.blur import blur_planes

        planes = x.contiguous().numpy()
        out = np.empty_like(planes)
        blur_planes(planes, np.ones(patch, planes.dtype), out)
        return torch.from_numpy(out)
    return F.avg_pool2d(x[:, None], patch, 1, patch // 2, count_include_pad=True)[:, 0] * patch ** 2


def _backproject(depth: Tensor, vm: Tensor, K: Tensor) -> Tensor:
    origin, dirs = _rays(vm, K, depth.shape[1], depth.shape[0])
    return origin + depth[..., None] * dirs


def _consistent(points: Tensor, depth_maps: list[tuple[Tensor, Tensor, Tensor]], tol: float) -> Tensor:
    """Number of the given (depth map, viewmat, K) that see each point at its depth (relative `tol`)."""
    count = torch.zeros(len(points), dtype=torch.long)
    for dm, vm, K in depth_maps:
        u, v, z = _project(points, vm, K)
        h, w = dm.shape
        iu, iv = u.floor().long(), v.floor().long()
        inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h) & (z > 0)
        d = torch.full_like(z, float("nan"))
        d[inside] = dm[iv[inside], iu[inside]]
        count += ((d - z).abs() < tol * z).long()
    return count


def _camera_groups(scene: SceneData) -> list[list[int]]:
    """Training view indices per physical camera (every view its own camera without `camera_ids`)."""
    ids = scene.train.cameras.camera_ids
    if ids is None:
        return [[i] for i in range(len(scene.train))]
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(ids.tolist()):
        groups.setdefault(c, []).append(i)
    return list(groups.values())


def depth_range(scene: SceneData, focus: Tensor | None = None) -> tuple[float, float]:
    """Sweep range: around the distance from the cameras to the point they look at, `focus`
    (`init.camera_focus`; the scene scale without one)."""
    if focus is None:
        d = float(scene.scene_scale)
    else:
        d = float((scene.train.cameras.centers.float() - focus).norm(dim=1).median())
    return 0.25 * d, 4.0 * d


def matched_pixels(sweep: SweepResult, scene: SceneData, dilate: int = 5) -> list[Tensor]:
    """Per training view, at its full resolution, the pixels near (within `dilate` // 2 swept pixels)
    a static sweep match: a surface is known in front of them. Views the sweep did not use as
    references (`max_refs`) get the pixels its static points project to: a point seen through a pixel
    means a surface at it or in front of it."""
    h, w = scene.height, scene.width
    out: list[Tensor] = [None] * len(scene.train)  # type: ignore[list-item]

    def full_size(m: Tensor) -> Tensor:  # (h', w') bool at the sweep's resolution -> (h, w)
        m = F.max_pool2d(m.float()[None, None], dilate, 1, dilate // 2)
        m = F.interpolate(m, scale_factor=sweep.factor, mode="nearest")[0, 0] > 0
        return F.pad(m, (0, max(0, w - m.shape[1]), 0, max(0, h - m.shape[0])))[:h, :w]

    for group, depth in zip(sweep.groups, sweep.static_depths):
        m = full_size(torch.isfinite(depth))
        for i in group:
            out[i] = m
    static = sweep[0][torch.isnan(sweep[2])]
    cams = scene.train.cameras
    for i in range(len(out)):
        if out[i] is not None:
            continue
        K = cams.Ks[i].float().clone()
        K[:2] /= sweep.factor
        u, v, z = _project(static, cams.viewmats[i].float(), K)
        hs, ws = -(-h // sweep.factor), -(-w // sweep.factor)
        inside = (u >= 0) & (u < ws) & (v >= 0) & (v < hs) & (z > 0)
        hit = torch.zeros(hs, ws, dtype=torch.bool)
        hit[v[inside].long(), u[inside].long()] = True
        out[i] = full_size(hit)
    return out


class SweepResult(tuple):
    """(points, colours, times) plus the static depth map of each reference camera (`static_depths`,
    NaN where unmatched, at 1/`factor` of the views' resolution) and the training views of each
    reference camera (`groups`)."""
    groups: list[list[int]]
    static_depths: list[Tensor]
    factor: int


def _shrink(image: Tensor, factor: int) -> Tensor:
    """(..., H, W, 3) averaged over `factor`² blocks (the last partial block dropped)."""
    if factor == 1:
        return image
    h, w = image.shape[-3] // factor * factor, image.shape[-2] // factor * factor
    x = image[..., :h, :w, :].movedim(-1, -3)
    lead = x.shape[:-3]
    x = F.avg_pool2d(x.reshape(-1, *x.shape[-3:]), factor)
    return x.reshape(*lead, *x.shape[-3:]).movedim(-3, -1)


@torch.no_grad()
def sweep_points(scene: SceneData, *, focus: Tensor | None = None, neighbours: int = 4, n_depths: int = 64,
                 moving_threshold: float = 0.1, consistency: float = 0.03, dynamic: bool = True,
                 max_side: int = 128, max_refs: int = 64) -> SweepResult:
    """Points, colours and times (seconds; NaN = static) from plane-sweep stereo on the training views.

    The views are averaged down to at most `max_side` pixels a side (initial points need no more,
    and the cost grows with the pixels), and at most `max_refs` cameras, spread over the list, take
    part (the cost grows with them too)."""
    views = scene.train
    cams = views.cameras
    groups = _camera_groups(scene)
    if len(groups) > max_refs:
        groups = [groups[i] for i in sorted(set(torch.linspace(0, len(groups) - 1, max_refs).round().long().tolist()))]
    factor = max(1, math.ceil(max(scene.width, scene.height) / max_side))
    firsts = [g[0] for g in groups]
    vms, Ks = cams.viewmats[firsts].float(), cams.Ks[firsts].float().clone()
    Ks[:, :2] /= factor  # pixel (i, j) of the shrunk view covers pixels [f·i, f·(i+1)) of the full one
    near, far = depth_range(scene, focus)
    nb = neighbours_of(vms, neighbours)
    frames = [_shrink(torch.stack([views.load_image(i)[..., :3] for i in g]), factor) for g in groups]
    static = [f.median(0).values for f in frames]
    pts, cols, times = [], [], []
    # static content: each camera's temporal median against its neighbours' medians
    dmaps = [sweep_depths(static[r], vms[r], Ks[r], [(static[n], vms[n], Ks[n]) for n in nb[r]], near, far,
                          n_depths) for r in range(len(groups))]
    for r in range(len(groups)):
        ok = torch.isfinite(dmaps[r])
        if not bool(ok.any()):
            continue
        p = _backproject(dmaps[r], vms[r], Ks[r])[ok]
        keep = _consistent(p, [(dmaps[n], vms[n], Ks[n]) for n in nb[r]], consistency) >= 1
        pts.append(p[keep]), cols.append(static[r][ok][keep])
        times.append(torch.full((int(keep.sum()),), float("nan")))
    if dynamic and cams.times is not None and all(len(g) == len(groups[0]) for g in groups) and len(groups[0]) > 1:
        # moving pixels: frame by frame, against the other cameras' same frame
        for f in range(len(groups[0])):
            t = float(cams.times[groups[0][f]])
            for r in range(len(groups)):
                moving = (frames[r][f] - static[r]).abs().amax(-1) > moving_threshold
                if not bool(moving.any()):
                    continue
                # only the box around the moving pixels (and the cost patch) is swept
                rows, cols_ = torch.nonzero(moving.any(1)).reshape(-1), torch.nonzero(moving.any(0)).reshape(-1)
                y0, y1 = max(int(rows[0]) - 3, 0), min(int(rows[-1]) + 4, moving.shape[0])
                x0, x1 = max(int(cols_[0]) - 3, 0), min(int(cols_[-1]) + 4, moving.shape[1])
                Kc = Ks[r].clone()
                Kc[0, 2] -= x0
                Kc[1, 2] -= y0
                crop = frames[r][f][y0:y1, x0:x1]
                d = sweep_depths(crop, vms[r], Kc, [(frames[n][f], vms[n], Ks[n]) for n in nb[r]],
                                 near, far, n_depths, mask=moving[y0:y1, x0:x1])
                ok = torch.isfinite(d)
                if bool(ok.any()):
                    pts.append(_backproject(d, vms[r], Kc)[ok]), cols.append(crop[ok])
                    times.append(torch.full((int(ok.sum()),), t))
    if not pts:
        out = SweepResult((torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0)))
    else:
        out = SweepResult((torch.cat(pts), torch.cat(cols), torch.cat(times)))
    out.groups, out.static_depths, out.factor = groups, dmaps, factor
    return out


__all__ = ["sweep_points", "sweep_depths", "neighbours_of", "depth_range", "matched_pixels", "SweepResult"]
