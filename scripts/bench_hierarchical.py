"""Hierarchical Gaussians: what each level and each level-of-detail cut costs and loses.

    nice -n 15 python scripts/bench_hierarchical.py scenes/garden --iterations 1000 --downscale 4

Trains (or resumes, or reuses) a `hierarchical` run and a flat `gs3d` run with the same iteration
budget, then prints, in this process:

* per level: Gaussians, test PSNR against the photos, PSNR against the full (finest) render,
  render time as a ratio of the full model's;
* per LOD threshold (pixels), from the test cameras and from cameras twice as far from the scene
  centre: mean Gaussians drawn per view, PSNR against the photos (test cameras only), PSNR against
  the full model's render of the same views, render-time ratio;
* the baseline: the flat gs3d scene pruned by importance (summed blending weight over training
  views, as `splatlab compress` computes it) to the same Gaussian counts, its test PSNR.

Timings are wall-clock minimum of `--repeats` renders in this process; on a shared machine the
load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from splatlab.cameras import Cameras  # noqa: E402
from splatlab.compress.importance import splat_importance  # noqa: E402
from splatlab.data import load_scene  # noqa: E402
from splatlab.gaussians import MethodSpec  # noqa: E402
from splatlab.io import read_splats  # noqa: E402
from splatlab.methods import hierarchical as hier  # noqa: E402
from splatlab.metrics import psnr  # noqa: E402
from splatlab.render import render  # noqa: E402
from splatlab.train import train_main  # noqa: E402


def train(scene: str, out: Path, method: str, args, extra: list[str]) -> None:
    """Train unless finished; resume when a checkpoint exists."""
    if (out / "metrics.json").is_file():
        return
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        argv = ["--resume", str(out)]
    else:
        argv = [scene, "--out", str(out), "--method", method, "--iterations", str(args.iterations),
                "--downscale", str(args.downscale), "--seed", str(args.seed), "--eval-every", "0",
                "--save-every", str(max(100, args.iterations // 5)), "--max-eval-views", "0",
                "--init-points", str(args.init_points), "--sh-degree", str(args.sh_degree), "--no-progress",
                "--refine-start", str(args.refine_start if args.refine_start is not None else min(500, args.iterations // 10)),
                *extra]
    if train_main(argv) != 0:
        raise SystemExit(f"training {method} into {out} failed")


def farther(cameras: Cameras, center: torch.Tensor, factor: float) -> Cameras:
    """The same views from `factor` times as far from `center` (same rotation and intrinsics)."""
    c2w = cameras.camtoworlds.clone()
    c2w[:, :3, 3] = center + factor * (c2w[:, :3, 3] - center)
    return Cameras(torch.linalg.inv(c2w), cameras.Ks, cameras.width, cameras.height)


def timed_render(g, cams: Cameras, bg, repeats: int):
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = render(g, cams, background=bg)
            best = min(best, time.perf_counter() - t0)
    return out.images.clamp(0, 1), best


def mean_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.mean([psnr(x, y) for x, y in zip(a, b)]))


def with_options(g, **opts):
    g.method = MethodSpec("hierarchical", {**g.method.options, "level": -1, "lod": 0.0, **opts})
    return g


def bench_scene(scene_dir: str, args) -> dict:
    name = Path(scene_dir).name
    base = Path(args.out) / name
    hier_extra = [f"--method-option=levels={args.levels}", f"--method-option=children={args.children}"]
    if args.roots:
        hier_extra.append(f"--method-option=roots={args.roots}")
    train(scene_dir, base / "hierarchical", "hierarchical", args, hier_extra)
    train(scene_dir, base / "gs3d", "gs3d", args, [])
    scene = load_scene(scene_dir, downscale=args.downscale)
    test = scene.test
    cams = test.cameras
    gt = torch.stack([test.load_image(i) for i in range(len(test))])
    bg = scene.background
    g = read_splats(base / "hierarchical" / "point_cloud.ply")
    flat = read_splats(base / "gs3d" / "point_cloud.ply")
    level, parent = hier.tree_of(g)
    finest = int(level.max())
    n_full = len(hier.level_cut(level, parent, finest))
    center = hier.resolve(g)["means"][level == 0].detach().median(dim=0).values
    far = farther(cams, center, 2.0)
    res: dict = {"scene": name, "iterations": args.iterations, "downscale": args.downscale,
                 "load_before": os.getloadavg()}

    full_img, t_full = timed_render(with_options(g), cams, bg, args.repeats)
    full_far, t_full_far = timed_render(with_options(g), far, bg, args.repeats)
    flat_img, t_flat = timed_render(flat, cams, bg, args.repeats)
    res["full"] = {"n": n_full, "psnr": mean_psnr(full_img, gt), "seconds": t_full, "seconds_far": t_full_far}
    res["gs3d"] = {"n": len(flat), "psnr": mean_psnr(flat_img, gt), "seconds": t_flat}
    print(f"\n== {name}: {args.iterations} iterations, 1/{args.downscale} resolution, load {res['load_before']}")
    print(f"finest level: {n_full} Gaussians, test PSNR {res['full']['psnr']:.2f} dB | flat gs3d: {len(flat)} "
          f"Gaussians, test PSNR {res['gs3d']['psnr']:.2f} dB (difference {res['full']['psnr'] - res['gs3d']['psnr']:+.2f})")

    print("\nlevel  Gaussians  frac   PSNR(test)  PSNR(vs full)  time ratio")
    res["levels"] = []
    for lv in range(finest + 1):
        rows = hier.level_cut(level, parent, lv)
        img, t = timed_render(with_options(g, level=lv), cams, bg, args.repeats)
        row = {"level": lv, "n": len(rows), "psnr": mean_psnr(img, gt), "psnr_vs_full": mean_psnr(img, full_img),
               "time_ratio": t / t_full}
        res["levels"].append(row)
        print(f"{lv:5d}  {row['n']:9d}  {row['n'] / n_full:5.3f}  {row['psnr']:10.2f}  {row['psnr_vs_full']:13.2f}  "
              f"{row['time_ratio']:10.3f}")

    print("\nLOD px  cams  Gaussians/view  frac   PSNR(test)  PSNR(vs full)  time ratio")
    res["lod"] = []
    for thr in args.thresholds:
        for label, views, ref, t_ref in (("test", cams, full_img, t_full), ("far", far, full_far, t_full_far)):
            img, t = timed_render(with_options(g, lod=thr), views, bg, args.repeats)
            with torch.no_grad():
                a = hier.resolve(g)
                size = hier.projected_size(a["means"], a["log_scales"], views)
            drawn = float(np.mean([len(hier.lod_cut(level, parent, size[i], thr)) for i in range(len(views))]))
            row = {"threshold": thr, "cameras": label, "n": drawn, "psnr": mean_psnr(img, gt) if label == "test" else None,
                   "psnr_vs_full": mean_psnr(img, ref), "time_ratio": t / t_ref}
            res["lod"].append(row)
            p = f"{row['psnr']:10.2f}" if row["psnr"] is not None else f"{'-':>10}"
            print(f"{thr:6.2f}  {label:4s}  {drawn:14.0f}  {drawn / n_full:5.3f}  {p}  {row['psnr_vs_full']:13.2f}  "
                  f"{row['time_ratio']:10.3f}")

    # baseline: flat gs3d pruned by importance to the hierarchy's counts
    train_views = scene.train.cameras
    pick = torch.linspace(0, len(train_views) - 1, min(args.importance_views, len(train_views))).round().long()
    imp = splat_importance(flat, train_views.viewmats[pick], train_views.Ks[pick], train_views.width, train_views.height)
    order = np.argsort(-imp, kind="stable")
    budgets = sorted({r["n"] for r in res["levels"]} | {round(r["n"]) for r in res["lod"] if r["cameras"] == "test"})
    print("\nbudget  frac(of hier full)  pruned gs3d PSNR(test)  hierarchy cut PSNR(test) at that count")
    res["pruned_gs3d"] = []
    cut_rows = [(r["n"], r["psnr"]) for r in res["levels"]] + [(r["n"], r["psnr"]) for r in res["lod"] if r["cameras"] == "test"]
    for k in budgets:
        k_flat = min(int(k), len(flat))
        keep = torch.as_tensor(np.sort(order[:k_flat]))
        img, _ = timed_render(flat.subset(keep), cams, bg, 1)
        p = mean_psnr(img, gt)
        ours = [q for n, q in cut_rows if round(n) == k]
        res["pruned_gs3d"].append({"n": k_flat, "psnr": p, "hier_psnr": ours[0] if ours else None})
        print(f"{k:6d}  {k / n_full:18.3f}  {p:22.2f}  {ours[0]:24.2f}")
    res["load_after"] = os.getloadavg()
    print(f"load average after: {res['load_after']}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="+")
    ap.add_argument("--out", default=str(ROOT / ".cache" / "bench_hierarchical"))
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--downscale", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-points", type=int, default=2000)
    ap.add_argument("--sh-degree", type=int, default=1)
    ap.add_argument("--refine-start", type=int, default=None, help="default: min(500, iterations / 10)")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--roots", type=int, default=0, help="keep at most this many coarsest Gaussians (0: all)")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--importance-views", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = [bench_scene(s, args) for s in args.scenes]
    path = Path(args.out) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
