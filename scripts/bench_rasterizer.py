"""Rasterizer benchmark: CPU backend vs the dense torch reference, in one process.

Scenes are random but realistic: Gaussians inside the view frustum at depth 2–6 with
3σ screen radii of 5–40 px, random rotations and anisotropy, opacities 0.05–1.
All times are medians over --repeats runs, wall clock, at torch's / numba's thread count.

Columns:
  fwd ms, fwd+bwd ms   the whole `rasterize` call (projection + SH, binning, compositing, and for
                       fwd+bwd the backward passes and autograd), as a user sees it.
  kernel ms            the forward compositing kernel `kernels.rasterize_forward` alone, called
                       again on exactly the inputs the last forward gave it (same process).
  pair evaluations (Gaussian, pixel) per second of that kernel, two counts:
    (a) evals/s        pairs the kernel evaluates: for each pixel, the entries of its row's culled
                       list (Gaussians whose α ≥ 1/255 ellipse crosses the pixel row inside the
                       tile) that it walks up to its early stop (`out_evals`). Culled entries are
                       not counted, so this is the conservative count.
    (b) tile-evals/s   implementation-independent: for each pixel, the entries of its tile's
                       depth-sorted list up to where the pixel terminates (the whole list if it
                       never does) — the work a plain per-tile rasterizer does for the same image
                       (`out_tile_evals`).
  The issue's floor (compositing kernel ≥ 400 M pair-evaluations/s, set by a plain per-tile
  prototype) is judged on (b): it is the prototype's own unit of work for the same image, so
  (b)/s compares the time to finish that work. (a)/s is printed too, but it drops whenever the
  kernel gets smarter about skipping pairs (row culling removes ~35% of them), so it cannot be
  the yardstick for speed.
  speed-up             over the dense reference, which is measured in the same process at a
                       smaller image size (32² or 16², it evaluates every pair at every pixel)
                       and compared per pixel, fwd+bwd.
"""
from __future__ import annotations

import argparse
import statistics
import time

import splatlab  # noqa: F401  (first: sets the OpenMP wait policy before torch loads)
import numpy as np
import torch

from splatlab.render import rasterize


def make_scene(n: int, size: int, sh_degree: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f = float(size)  # ~53° horizontal field of view
    depth = 2.0 + 4.0 * torch.rand(n, generator=g)
    ndc = (torch.rand(n, 2, generator=g) - 0.5) * 1.1
    xy = ndc * depth[:, None] * size / f
    means = torch.cat([xy, depth[:, None]], dim=1)
    radius_px = 5.0 + 35.0 * torch.rand(n, generator=g)
    sigma = radius_px * depth / (3.0 * f)
    aniso = torch.exp((torch.rand(n, 3, generator=g) - 0.5) * 1.0)
    scales = sigma[:, None] * aniso
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacities = 0.05 + 0.95 * torch.rand(n, generator=g)
    coeffs = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.3
    viewmat = torch.eye(4)[None]
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])[None]
    return [means, quats, scales, opacities, coeffs], viewmat, K


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up (JIT load, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def forward_kernel(params, vm, K, size, sh_degree, repeats: int) -> tuple[float, int, int]:
    """Median time of the forward compositing kernel alone, on the inputs a real forward gave it,
    and its two pair counts (a) and (b) (see the module docstring)."""
    from splatlab.render.cpu import backend as cpu_backend
    from splatlab.render.cpu import kernels

    with torch.no_grad():
        rasterize(*params, vm, K, size, size, sh_degree=sh_degree, backend="cpu")
    evals = int(cpu_backend.last_forward_evals.astype(np.int64).sum())
    tile_evals = int(cpu_backend.last_forward_tile_evals.astype(np.int64).sum())
    args = cpu_backend.last_forward_kernel_args
    outs = tuple(np.empty_like(a) for a in args[-5:])  # don't overwrite the forward's outputs
    kernel_t = time_it(lambda: kernels.rasterize_forward(*args[:-5], *outs), repeats)
    assert np.array_equal(outs[3], args[-2]), "kernel re-run disagrees with the forward"
    return kernel_t, evals, tile_evals


def run_case(n: int, size: int, sh_degree: int, repeats: int, ref_size: int) -> dict:
    params, vm, K = make_scene(n, size, sh_degree)
    leaves = [p.clone().requires_grad_(True) for p in params]

    def forward(backend="cpu", s=size, Kc=K):
        with torch.no_grad():
            rasterize(*params, vm, Kc, s, s, sh_degree=sh_degree, backend=backend)

    def forward_backward(backend="cpu", s=size, Kc=K):
        img, alpha, _ = rasterize(*leaves, vm, Kc, s, s, sh_degree=sh_degree, backend=backend)
        (img.sum() + alpha.sum()).backward()

    fwd = time_it(forward, repeats)
    fwdbwd = time_it(forward_backward, repeats)
    kernel, evals, tile_evals = forward_kernel(params, vm, K, size, sh_degree, repeats)

    # Dense reference: same Gaussians seen through a camera with the same field of view at a
    # smaller image (it costs N x pixels), normalised per pixel.
    Kr = K.clone()
    Kr[:, :2] *= ref_size / size
    ref_fwdbwd = time_it(lambda: forward_backward("reference", ref_size, Kr), 1)
    ref_per_pixel = ref_fwdbwd / ref_size**2
    ours_per_pixel = fwdbwd / size**2
    return dict(n=n, size=size, sh=sh_degree, fwd=fwd, fwdbwd=fwdbwd, kernel=kernel, evals=evals,
                tile_evals=tile_evals, ref_fwdbwd=ref_fwdbwd, ref_size=ref_size,
                speedup=ref_per_pixel / ours_per_pixel)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="only the 20k/256² SH0 case")
    ap.add_argument("--ges", action="store_true",
                    help="also time the generalized exponential kernel (GES, shapes β in [1, 4]) against Gaussians")
    args = ap.parse_args()
    cases = [(20_000, 256, 0), (20_000, 256, 3), (100_000, 256, 0), (100_000, 256, 3),
             (20_000, 512, 3), (100_000, 512, 0), (100_000, 512, 3)]
    if args.quick:
        cases = cases[:1]
    import numba

    print(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, numba threads "
          f"{numba.get_num_threads()}; kernel = forward compositing kernel alone; (a) evals = culled row-list "
          "entries walked to each pixel's stop, (b) tile-evals = tile-list entries to the same stop (plain tile "
          "rasterizer; the floor is judged on this)")
    print(f"{'N':>7} {'size':>5} {'SH':>3} {'fwd ms':>7} {'fwd+bwd ms':>10} {'kernel ms':>9} "
          f"{'(a) M':>6} {'(a) M/s':>8} {'(b) M':>6} {'(b) M/s':>8} {'ref fwd+bwd s':>14} {'speed-up':>9}")
    for n, size, sh in cases:
        r = run_case(n, size, sh, args.repeats, ref_size=16 if n >= 100_000 else 32)
        print(f"{r['n']:>7} {r['size']:>5} {r['sh']:>3} {1e3 * r['fwd']:>7.1f} {1e3 * r['fwdbwd']:>10.1f} "
              f"{1e3 * r['kernel']:>9.1f} {r['evals'] / 1e6:>6.1f} {r['evals'] / r['kernel'] / 1e6:>8.0f} "
              f"{r['tile_evals'] / 1e6:>6.1f} {r['tile_evals'] / r['kernel'] / 1e6:>8.0f} "
              f"{r['ref_fwdbwd']:>9.2f}@{r['ref_size']}² {r['speedup']:>8.0f}x", flush=True)
    if args.ges:
        ges_vs_gaussian(args.repeats)


def ges_vs_gaussian(repeats: int, n: int = 20_000, size: int = 256) -> None:
    """GES (per-Gaussian β in [1, 4]) against plain Gaussians on the same scene, forward and
    forward + backward, in this process."""
    params, vm, K = make_scene(n, size, 0)
    shapes = 1.0 + 3.0 * torch.rand(n, generator=torch.Generator().manual_seed(1))

    def run(with_shapes: bool, backward: bool):
        leaves = [p.clone().requires_grad_(backward) for p in params]
        shp = shapes.clone().requires_grad_(backward) if with_shapes else None
        with torch.set_grad_enabled(backward):
            img, alpha, _ = rasterize(*leaves, vm, K, size, size, sh_degree=0, backend="cpu", shapes=shp)
            if backward:
                (img.sum() + alpha.sum()).backward()

    times = {(g, b): time_it(lambda g=g, b=b: run(g, b), repeats) for g in (False, True) for b in (False, True)}
    print(f"GES vs Gaussian, {n} Gaussians at {size}²: forward {1e3 * times[True, False]:.1f} vs "
          f"{1e3 * times[False, False]:.1f} ms ({times[True, False] / times[False, False]:.2f}x), forward+backward "
          f"{1e3 * times[True, True]:.1f} vs {1e3 * times[False, True]:.1f} ms "
          f"({times[True, True] / times[False, True]:.2f}x)")

if __name__ == "__main__":
    main()
