"""The child processes of `compile_ahead`: compile one pass's CPU kernels into numba's disk cache.

    python -m splatlab.render.cpu.warmup [forward] [backward]
"""
from __future__ import annotations

import sys

import numpy as np

from .compile_ahead import PASSES


def backward_calls() -> list[tuple]:
    """(kernel, arguments) for the backward pass's kernels on an empty 16x16 image: the same
    argument types as `backend.py` passes (a test holds them to it), so the compiled code is the
    code a real backward loads from the cache."""
    from . import kernels, preprocess

    f32, f64, i32, i64 = np.float32, np.float64, np.int32, np.int64
    n, size, D = 1, 16, 3
    raster = (np.zeros(2, i64), np.zeros(0, i32), np.zeros((n, kernels.N_PARAMS), f32), np.zeros((n, 5), f64),
              np.zeros((n, D), f32), False, np.zeros(D, f32), size, size, np.array([0, 1], i64), np.zeros(1, i64),
              np.ones((size, size), f64), np.full((size, size), -1, i32), np.zeros((size, size, D), f32),
              np.zeros((size, size), f32), n)
    partial = np.zeros((1, n, 10 + D), f64)
    eye = np.eye(4, dtype=f64)
    project = (np.zeros((n, 3), f32), np.zeros((n, 4), f32), np.zeros((n, 3), f32), np.zeros(n, f32), eye,
               eye[:3, :3].copy(), size, size, 0.3, False, np.zeros((n, 1, 3), f32), 0, np.zeros((n, 2), i32),
               np.zeros((n, 3), f32), np.zeros((n, 2), f32), np.zeros((n, 3), f32), np.zeros(n, f32),
               np.zeros(n, f32), np.zeros((n, 3), f32), np.zeros((n, 3), f64), np.zeros((n, 4), f64),
               np.zeros((n, 3), f64), np.zeros(n, f64), np.zeros((n, 1, 3), f64))
    return [(kernels.rasterize_backward, raster), (kernels.sum_partials, (partial, np.zeros((n, 10 + D), f32))),
            (preprocess.project_backward, project)]


def compile_forward() -> None:
    """The forward pass's kernels, through a real render of a few thousand Gaussians (enough that
    binning takes its parallel path too)."""
    import torch

    from splatlab.render import rasterize

    g = torch.Generator().manual_seed(0)
    n, size = 5000, 32
    means = torch.rand(n, 3, generator=g) - 0.5 + torch.tensor([0.0, 0.0, 3.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.full((n, 3), 0.02)
    opacities = torch.full((n,), 0.5)
    colors = torch.rand(n, 1, 3, generator=g)
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]])[None]
    with torch.no_grad():
        rasterize(means, quats, scales, opacities, colors, torch.eye(4)[None], K, size, size, sh_degree=0,
                  backend="cpu")


def compile_ssim() -> None:
    """The training loss's compiled SSIM, both ways (with the backward pass: the forward pass's
    kernels take longer to compile, so the two children finish together)."""
    import torch

    from splatlab.metrics import ssim

    g = torch.Generator().manual_seed(0)
    pred = torch.rand(32, 32, 3, generator=g).requires_grad_(True)
    ssim(pred, torch.rand(32, 32, 3, generator=g)).backward()


def main(argv: list[str] | None = None) -> int:
    which = (argv if argv is not None else sys.argv[1:]) or list(PASSES)
    for name in which:
        if name == "forward":
            compile_forward()
        elif name == "backward":
            for kernel, args in backward_calls():
                kernel(*args)
            compile_ssim()
        else:
            print(f"usage: python -m {__name__} [forward] [backward]", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
