#!/usr/bin/env python
"""The Gaussians' optimiser step: torch's default Adam (per tensor) against the fused kernel the
trainer uses (`splatlab.train.trainer.gaussian_adam`), in one process, one group per Gaussian field
as in training. Prints ms per step and the ratio, and the largest parameter difference after the
same steps (float rounding only).

    python scripts/bench_adam.py [--gaussians 50000] [--sh-degree 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import splatlab  # noqa: F401  (sets the OpenMP wait policy before torch loads)
import torch

from splatlab.gaussians import num_sh_bases
from splatlab.train.trainer import gaussian_adam


def make(n: int, sh_degree: int, fused: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,), "sh0": (n, 1, 3),
              "shN": (n, num_sh_bases(sh_degree) - 1, 3)}
    params = {k: torch.nn.Parameter(torch.randn(s, generator=g)) for k, s in shapes.items()}
    grads = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    groups = [{"params": [p], "lr": 1e-3 * (i + 1), "name": k} for i, (k, p) in enumerate(params.items())]
    opt = gaussian_adam(groups) if fused else torch.optim.Adam(groups, eps=1e-15)
    return params, grads, opt


def ms_per_step(n: int, sh_degree: int, fused: bool, steps: int) -> tuple[float, dict]:
    params, grads, opt = make(n, sh_degree, fused)
    for k, p in params.items():
        p.grad = grads[k]
    for _ in range(3):
        opt.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return 1000 * (time.perf_counter() - t0) / steps, params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, nargs="*", default=[10_000, 50_000])
    ap.add_argument("--sh-degree", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, SH degree {args.sh_degree}")
    print("Gaussians  per-tensor ms  fused ms  fused/per-tensor  max |param diff|")
    for n in args.gaussians:
        slow, p_slow = ms_per_step(n, args.sh_degree, False, args.steps)
        fast, p_fast = ms_per_step(n, args.sh_degree, True, args.steps)
        diff = max((p_slow[k] - p_fast[k]).abs().max().item() for k in p_slow)
        print(f"{n:9d} {slow:14.2f} {fast:9.2f} {fast / slow:17.2f} {diff:17.1e}")


if __name__ == "__main__":
    main()
