"""SplatFormer refinement speed: seconds per forward pass at 10k/50k/100k Gaussians on this machine,
with the ratio against a baseline run in the same process (one 256² render of the same scene through
the CPU rasterizer), and against the 3 s target for 50k Gaussians (issue 18).

    .venv/bin/python scripts/bench_splatformer.py [--weights DIR] [--sizes 10000,50000,100000]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from splatlab.cameras import Cameras, intrinsics_from_fov, look_at
from splatlab.gaussians import Gaussians
from splatlab.models.splatformer import SplatFormer
from splatlab.render import render


def random_scene(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    g = Gaussians.from_points(torch.randn(n, 3, generator=gen) * 0.5, torch.rand(n, 3, generator=gen),
                              torch.full((n,), 0.01), opacity=0.5, sh_degree=1)
    return g


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="weights folder (default: shipped weights, else an untrained default config)")
    ap.add_argument("--sizes", default="10000,50000,100000")
    args = ap.parse_args()
    try:
        model = SplatFormer.from_pretrained(args.weights)
        source = "weights"
    except ValueError:
        model = SplatFormer().eval()
        source = "untrained default config (same cost)"
    params = sum(p.numel() for p in model.parameters())
    print(f"SplatFormer: {params / 1e6:.2f}M parameters ({source}); torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}")
    cams = Cameras(look_at(torch.tensor([0.0, -2.5, 1.0]), torch.zeros(3))[None], intrinsics_from_fov(0.9, 256, 256)[None],
                   256, 256)
    print(f"{'gaussians':>10} {'refine s':>9} {'render s':>9} {'refine/render':>14} {'vs 3 s target':>14}")
    for n in (int(s) for s in args.sizes.split(",")):
        g = random_scene(n)
        model.refine(g)  # warm-up
        t_refine = best_of(lambda: model.refine(g))
        with torch.no_grad():
            render(g, cams)
            t_render = best_of(lambda: render(g, cams))
        print(f"{n:>10} {t_refine:>9.2f} {t_render:>9.3f} {t_refine / t_render:>14.1f} {t_refine / 3.0:>14.2f}")


if __name__ == "__main__":
    main()
