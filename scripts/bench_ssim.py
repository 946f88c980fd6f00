#!/usr/bin/env python
"""Training SSIM, forward + backward of the loss term on an (n, n, 3) render, in one process:

  autograd    the previous path: autograd through the SSIM formula, the blur as dense band
              matrices (n <= metrics.MATMUL_MAX) or depthwise conv2d (above it);
  band, conv  that autograd path forced onto one blur, to show where MATMUL_MAX sits;
  ours        what training runs now: `metrics.ssim`, on CPU the compiled forward and hand-written
              gradient of `splatlab.render.cpu.ssim`.

    python scripts/bench_ssim.py [--threads 2] [--sizes 64 96 128 256]
"""
from __future__ import annotations

import argparse
import time

import torch

import splatlab  # noqa: F401  (sets the OpenMP wait policy before torch loads)
from splatlab import metrics


def autograd_ssim(limit: int | None):
    """The formula differentiated by autograd, the blur forced onto one path (None: MATMUL_MAX's)."""
    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        saved = metrics.MATMUL_MAX
        if limit is not None:
            metrics.MATMUL_MAX = limit
        try:
            p, t = pred.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]
            _, _, a1, a2, b1, b2 = metrics._ssim_terms(p, t, 11, 1.5)
            return (a1 * a2 / (b1 * b2)).mean()
        finally:
            metrics.MATMUL_MAX = saved
    return loss


def ms_per_call(fn, pred: torch.Tensor, target: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    x = pred.clone().requires_grad_()
    for _ in range(3):
        x.grad = None
        (1 - fn(x, target)).backward()
    t0 = time.perf_counter()
    for _ in range(repeats):
        x.grad = None
        (1 - fn(x, target)).backward()
    return 1000 * (time.perf_counter() - t0) / repeats, x.grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 96, 128, 200, 256])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    print(f"torch {torch.__version__}, {args.threads} threads; MATMUL_MAX = {metrics.MATMUL_MAX}")
    print("   n  autograd ms  band ms  conv ms  ours ms  ours/autograd  max |grad diff|")
    for n in args.sizes:
        g = torch.Generator().manual_seed(n)
        pred = torch.rand(n, n, 3, generator=g)
        target = (pred + 0.2 * torch.randn(n, n, 3, generator=g)).clamp(0, 1)
        old, g_old = ms_per_call(autograd_ssim(None), pred, target, args.repeats)
        band, _ = ms_per_call(autograd_ssim(10 ** 9), pred, target, args.repeats)
        conv, _ = ms_per_call(autograd_ssim(0), pred, target, args.repeats)
        ours, g_ours = ms_per_call(metrics.ssim, pred, target, args.repeats)
        diff = (g_ours - g_old).abs().max().item()
        print(f"{n:4d} {old:12.1f} {band:8.1f} {conv:8.1f} {ours:8.1f} {ours / old:14.2f} {diff:16.1e}")


if __name__ == "__main__":
    main()
