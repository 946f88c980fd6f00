#!/usr/bin/env python
"""Training SSIM's blur: the dense band-matrix path against depthwise conv2d, per image size, in one
process (forward + backward of the (1, 15, n, n) stack `metrics.ssim_map` blurs). `metrics.MATMUL_MAX`
picks the path; this shows where the crossover is on this machine.

    python scripts/bench_ssim.py [--threads 2] [--sizes 64 96 128 256]
"""
from __future__ import annotations

import argparse
import time

import torch

from splatlab import metrics


def blur_with(limit: int):
    """`metrics.gaussian_blur` forced onto one path (`MATMUL_MAX` set to `limit` for the call)."""
    def blur(x: torch.Tensor) -> torch.Tensor:
        saved, metrics.MATMUL_MAX = metrics.MATMUL_MAX, limit
        try:
            return metrics.gaussian_blur(x, 11, 1.5)
        finally:
            metrics.MATMUL_MAX = saved
    return blur


band_blur, conv_blur = blur_with(10 ** 9), blur_with(0)


def ms_per_call(fn, x: torch.Tensor, repeats: int) -> float:
    x = x.clone().requires_grad_()
    for _ in range(3):
        fn(x).square().sum().backward()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(x).square().sum().backward()
    return 1000 * (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 96, 128, 200, 256])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; MATMUL_MAX = {metrics.MATMUL_MAX}")
    print("   n  band ms  conv ms  band/conv  path used")
    for n in args.sizes:
        x = torch.rand(1, 15, n, n)
        assert torch.allclose(band_blur(x), conv_blur(x), atol=1e-5)
        band, conv = ms_per_call(band_blur, x, args.repeats), ms_per_call(conv_blur, x, args.repeats)
        print(f"{n:4d} {band:8.1f} {conv:8.1f} {band / conv:10.2f}  {'band' if n <= metrics.MATMUL_MAX else 'conv'}")


if __name__ == "__main__":
    main()
