"""Rasterizer benchmark: CPU backend vs the dense torch reference, in one process.

Scenes are random but realistic: Gaussians inside the view frustum at depth 2–6 with
3σ screen radii of 5–40 px, random rotations and anisotropy, opacities 0.05–1.
Prints forward and forward+backward medians, (Gaussian, pixel) pair evaluations per second,
and the speed-up over the dense reference (which is measured in the same process at a smaller image
size, 32² or 16², because it evaluates every pair at every pixel, and reported per pixel).
"""
from __future__ import annotations

import argparse
import statistics
import time

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


def pairs_evaluated(params, vm, K, size, sh_degree) -> int:
    """(Gaussian, pixel) pairs the forward kernel actually evaluated (σ and α computed): the sum of
    its per-pixel counts (`out_evals`: row-list entries walked up to the pixel's early stop; entries
    culled before evaluation are not counted)."""
    from splatlab.render.cpu import backend as cpu_backend

    with torch.no_grad():
        rasterize(*params, vm, K, size, size, sh_degree=sh_degree, backend="cpu")
    return int(cpu_backend.last_forward_evals.astype(np.int64).sum())


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
    pairs = pairs_evaluated(params, vm, K, size, sh_degree)

    # Dense reference: same Gaussians seen through a camera with the same field of view at a
    # smaller image (it costs N x pixels), normalised per pixel.
    Kr = K.clone()
    Kr[:, :2] *= ref_size / size
    ref_fwdbwd = time_it(lambda: forward_backward("reference", ref_size, Kr), 1)
    ref_per_pixel = ref_fwdbwd / ref_size**2
    ours_per_pixel = fwdbwd / size**2
    return dict(n=n, size=size, sh=sh_degree, fwd=fwd, fwdbwd=fwdbwd, pairs=pairs,
                pairs_per_s=pairs / fwd, ref_fwdbwd=ref_fwdbwd, ref_size=ref_size,
                speedup=ref_per_pixel / ours_per_pixel)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="only the 20k/256² SH0 case")
    args = ap.parse_args()
    cases = [(20_000, 256, 0), (20_000, 256, 3), (100_000, 256, 0), (100_000, 256, 3),
             (20_000, 512, 3), (100_000, 512, 0), (100_000, 512, 3)]
    if args.quick:
        cases = cases[:1]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'N':>7} {'size':>5} {'SH':>3} {'fwd ms':>8} {'fwd+bwd ms':>11} {'Mpairs':>7} {'Mpairs/s':>9} "
          f"{'ref fwd+bwd s':>14} {'speed-up':>9}")
    for n, size, sh in cases:
        r = run_case(n, size, sh, args.repeats, ref_size=16 if n >= 100_000 else 32)
        print(f"{r['n']:>7} {r['size']:>5} {r['sh']:>3} {1e3 * r['fwd']:>8.1f} {1e3 * r['fwdbwd']:>11.1f} "
              f"{r['pairs'] / 1e6:>7.1f} {r['pairs_per_s'] / 1e6:>9.0f} "
              f"{r['ref_fwdbwd']:>9.2f}@{r['ref_size']}² {r['speedup']:>8.0f}x", flush=True)


if __name__ == "__main__":
    main()
