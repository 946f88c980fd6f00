#!/usr/bin/env python
"""Plane-sweep initialisation (`splatlab/train/sweep.py`) on a scene's training views, in one process:

  torch     the per-plane costs (`plane_costs_torch`: grid_sample and ~25 elementwise passes) and
            the per-pixel depth choice (`best_depths_torch`: topk, min, nanmedian) in torch ops;
  ours      what `splatlab train` runs on CPU: both compiled (`plane_costs`, `best_depths`).

Prints each path's time (the median of --repeats runs, after one untimed run that compiles), the
ratio ours / torch, the points each path keeps and how many depth-map pixels differ (near-tied
costs flip at float rounding).

    python scripts/bench_sweep.py [scenes/robot] [--threads 1] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import splatlab  # noqa: F401  (sets the OpenMP wait policy before torch loads)
import numba
import torch

from splatlab.data import DatasetError, load_scene
from splatlab.train import sweep


def run(scene, compiled: bool, repeats: int):
    """(median seconds, last result) of `sweep_points` with the compiled or the torch passes."""
    saved = sweep.plane_costs, sweep.best_depths
    if not compiled:
        sweep.plane_costs, sweep.best_depths = sweep.plane_costs_torch, sweep.best_depths_torch
    try:
        result = sweep.sweep_points(scene)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = sweep.sweep_points(scene)
            times.append(time.perf_counter() - t)
    finally:
        sweep.plane_costs, sweep.best_depths = saved
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene", nargs="?", default="scenes/robot")
    ap.add_argument("--threads", type=int, default=1, help="torch and numba threads (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    try:
        scene = load_scene(args.scene)
    except DatasetError as err:
        raise SystemExit(f"bench_sweep: {err}") from None
    t_torch, ref = run(scene, False, args.repeats)
    t_ours, ours = run(scene, True, args.repeats)
    differ = sum(int((~((a == b) | (a.isnan() & b.isnan()))).sum())
                 for a, b in zip(ours.static_depths, ref.static_depths))
    pixels = sum(a.numel() for a in ref.static_depths)
    print(f"{args.scene}: {len(scene.train)} views, {len(ref.static_depths)} reference cameras at factor "
          f"{ref.factor}, {args.threads} thread(s)")
    print(f"torch {t_torch:.2f} s, ours {t_ours:.2f} s, ours/torch {t_ours / t_torch:.2f}")
    print(f"points kept: torch {len(ref[0])}, ours {len(ours[0])}; depth-map pixels that differ: "
          f"{differ} of {pixels} ({100 * differ / pixels:.2f}%)")


if __name__ == "__main__":
    main()
