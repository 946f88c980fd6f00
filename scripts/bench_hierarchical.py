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

`--far-truth` also renders the far views with the scene generator (`scripts/make_scenes.py`,
pyrender; bundled object/unbounded scenes only, cached in the run folder), so the far rows get a
PSNR against real images of those views: the full model's, each cut's, and the cut's loss
against the full model (full − cut, in dB; negative when the cut is closer to the truth). From
twice as far, finest-level Gaussians fall below a pixel and the full render aliases, which a
PSNR against the full render alone counts as the cut's error.

    nice -n 15 python scripts/bench_hierarchical.py --synthetic [--roots 1000 --levels 4]

`--synthetic` needs no training: a hand-built tree (roots on a sphere, `--children` half-size
children per node, as `hierarchical` initialises new levels) seen by an orbit of views from near
and from twice as far. It prints, per threshold, the LOD cut's Gaussians per view and the speed
ratio finest / LOD of the same batch in this process (interleaved repeats, minimum time), for the
batched LOD render (one rasterize call on the union of the views' cuts with per-view visibility)
and for the per-view calls it replaced.
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


def timed_ratio(g, full, cams: Cameras, bg, repeats: int):
    """(image, seconds, seconds of `full`): the two renders timed alternately, so a shared machine's
    load changes hit both alike; the ratio of the minima is what the tables print."""
    best, best_full = float("inf"), float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = render(g, cams, background=bg)
            best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            render(full, cams, background=bg)
            best_full = min(best_full, time.perf_counter() - t0)
    return out.images.clamp(0, 1), best, best_full


def mean_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.mean([psnr(x, y) for x, y in zip(a, b)]))


def with_options(g, **opts):
    g.method = MethodSpec("hierarchical", {**g.method.options, "level": -1, "lod": 0.0, **opts})
    return g


def far_truth(scene_dir: str, out: Path, center: torch.Tensor, factor: float, downscale: int, background):
    """Test views rendered by the scene generator from `factor` times as far from `center` (the
    views `farther` makes), loaded like the scene's own photos; None for scenes it did not make.
    Cached in `out` (a Blender folder: train/val linked, test moved) and re-rendered when the
    centre or factor change."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_scenes

    name = Path(scene_dir).resolve().name
    cfg = make_scenes.SCENES.get(name)
    src = Path(scene_dir)
    if cfg is None or cfg["kind"] not in ("object", "unbounded") or not (src / "transforms_test.json").is_file():
        print(f"--far-truth: {scene_dir} is not a bundled object/unbounded scene of scripts/make_scenes.py; skipped")
        return None
    key = {"center": [round(float(x), 6) for x in center], "factor": factor}
    stamp = out / "far_truth.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == key):
        if out.exists():
            import shutil
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for split in ("train", "val"):
            if (src / f"transforms_{split}.json").is_file():
                (out / f"transforms_{split}.json").write_text((src / f"transforms_{split}.json").read_text())
                os.symlink((src / split).resolve(), out / split)
        meta = json.loads((src / "transforms_test.json").read_text())
        spec = cfg["builder"](np.random.default_rng(cfg["seed"]))
        rend = make_scenes.SceneRenderer(spec, cfg["fov_x"], alpha=cfg["kind"] == "object")
        c = np.array(key["center"])
        (out / "test").mkdir()
        try:
            for fr in meta["frames"]:
                c2w = np.array(fr["transform_matrix"], dtype=np.float64)
                c2w[:3, 3] = c + factor * (c2w[:3, 3] - c)
                fr["transform_matrix"] = c2w.tolist()
                make_scenes.save_png(out / (fr["file_path"].removeprefix("./") + ".png"), rend.render(c2w))
        finally:
            rend.close()
        (out / "transforms_test.json").write_text(json.dumps(meta, indent=1))
        stamp.write_text(json.dumps(key))
    scene = load_scene(str(out), downscale=downscale, background=background)
    return scene.test.cameras, torch.stack([scene.test.load_image(i) for i in range(len(scene.test))])


def bench_scene(scene_dir: str, args) -> dict:
    name = Path(scene_dir).name
    base = Path(args.out) / name
    hier_extra = [f"--method-option=levels={args.levels}", f"--method-option=children={args.children}"]
    if args.roots:
        hier_extra.append(f"--method-option=roots={args.roots}")
    hier_extra += [f"--method-option={o}" for o in args.option]
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
    pin = int(g.method.options.get("pinned", 0)) if g.method is not None else 0  # the background shell's rows
    roots = (level == 0) & (torch.arange(len(level)) >= pin)
    center = hier.resolve(g)["means"][roots].detach().median(dim=0).values
    far = farther(cams, center, 2.0)
    res: dict = {"scene": name, "iterations": args.iterations, "downscale": args.downscale,
                 "load_before": os.getloadavg()}

    g_full = tagged(g)
    timed_render(g_full, cams, bg, 1)  # compile the rasterizer's kernels before timing
    full_img, t_full = timed_render(g_full, cams, bg, args.repeats)
    far_gt = None
    if args.far_truth:
        truth = far_truth(scene_dir, base / "far_truth", center, 2.0, args.downscale, scene.background.tolist())
        if truth is not None:
            far_cams, far_gt = truth
            if not torch.allclose(far_cams.viewmats, far.viewmats, atol=1e-4):
                raise SystemExit("--far-truth: the rendered far views do not match the benchmark's far cameras")
    full_far, t_full_far = timed_render(g_full, far, bg, args.repeats)
    flat_img, t_flat = timed_render(flat, cams, bg, args.repeats)
    res["full"] = {"n": n_full, "psnr": mean_psnr(full_img, gt), "seconds": t_full, "seconds_far": t_full_far,
                   "psnr_far_truth": mean_psnr(full_far, far_gt) if far_gt is not None else None}
    res["gs3d"] = {"n": len(flat), "psnr": mean_psnr(flat_img, gt), "seconds": t_flat}
    print(f"\n== {name}: {args.iterations} iterations, 1/{args.downscale} resolution, load {res['load_before']}")
    print(f"finest level: {n_full} Gaussians, test PSNR {res['full']['psnr']:.2f} dB | flat gs3d: {len(flat)} "
          f"Gaussians, test PSNR {res['gs3d']['psnr']:.2f} dB (difference {res['full']['psnr'] - res['gs3d']['psnr']:+.2f})")
    if far_gt is not None:
        print(f"far cameras (x2): the full model's PSNR against the generator's renders of those views "
              f"{res['full']['psnr_far_truth']:.2f} dB")

    print("\nlevel  Gaussians  frac   PSNR(test)  PSNR(vs full)  time ratio")
    res["levels"] = []
    for lv in range(finest + 1):
        rows = hier.level_cut(level, parent, lv)
        img, t, t_ref = timed_ratio(tagged(g, level=lv), g_full, cams, bg, args.repeats)
        row = {"level": lv, "n": len(rows), "psnr": mean_psnr(img, gt), "psnr_vs_full": mean_psnr(img, full_img),
               "time_ratio": t / t_ref}
        res["levels"].append(row)
        print(f"{lv:5d}  {row['n']:9d}  {row['n'] / n_full:5.3f}  {row['psnr']:10.2f}  {row['psnr_vs_full']:13.2f}  "
              f"{row['time_ratio']:10.3f}")

    print("\nLOD px  cams  Gaussians/view  frac   PSNR(test)  PSNR(vs full)  time ratio  (LOD ms / full ms, batch)"
          + ("  [far: PSNR(truth), loss vs full]" if far_gt is not None else ""))
    res["lod"] = []
    for thr in args.thresholds:
        for label, views, ref in (("test", cams, full_img), ("far", far, full_far)):
            img, t, t_ref = timed_ratio(tagged(g, lod=thr), g_full, views, bg, args.repeats)
            with torch.no_grad():
                a = hier.resolve(g)
                size = hier.projected_size(a["means"], a["log_scales"], views)
            drawn = float(np.mean([len(hier.lod_cut(level, parent, size[i], thr)) for i in range(len(views))]))
            row = {"threshold": thr, "cameras": label, "n": drawn, "psnr": mean_psnr(img, gt) if label == "test" else None,
                   "psnr_vs_full": mean_psnr(img, ref), "time_ratio": t / t_ref, "ms": 1e3 * t, "ms_full": 1e3 * t_ref}
            extra = ""
            if label == "far" and far_gt is not None:
                row["psnr_far_truth"] = mean_psnr(img, far_gt)
                row["loss_vs_full_far_truth"] = res["full"]["psnr_far_truth"] - row["psnr_far_truth"]
                extra = f"  [{row['psnr_far_truth']:.2f}, {row['loss_vs_full_far_truth']:+.2f}]"
            res["lod"].append(row)
            p = f"{row['psnr']:10.2f}" if row["psnr"] is not None else f"{'-':>10}"
            print(f"{thr:6.2f}  {label:4s}  {drawn:14.0f}  {drawn / n_full:5.3f}  {p}  {row['psnr_vs_full']:13.2f}  "
                  f"{row['time_ratio']:10.3f}  ({row['ms']:.1f} / {row['ms_full']:.1f}){extra}")

    # baseline: flat gs3d pruned by importance to the hierarchy's counts
    train_views = scene.train.cameras
    n_imp = min(args.importance_views or len(train_views), len(train_views))
    pick = torch.linspace(0, len(train_views) - 1, n_imp).round().long()
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


def synthetic_tree(n_roots: int, children: int, levels: int, seed: int = 0):
    """Roots on a unit sphere (3σ ≈ 0.2), each finer level `children` children per node with the
    residuals `add_children` starts from (half the parent's scale, offset in ±0.5 R·S) plus small
    colour residuals; a complete picture at every level."""
    from splatlab.gaussians import Gaussians

    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n_roots, 3, generator=gen)
    v = v / v.norm(dim=1, keepdim=True)
    col = 0.4 * torch.stack([torch.sin(4 * v[:, 0]), torch.cos(5 * v[:, 1]), torch.sin(3 * v[:, 2])], 1)
    quats = torch.zeros(n_roots, 4)
    quats[:, 0] = 1
    g = Gaussians.from_fields({"means": v, "quats": quats, "scales": torch.full((n_roots, 3), float(np.log(0.07))),
                               "opacities": torch.full((n_roots,), 2.0), "sh0": col[:, None] / 0.2821,
                               "shN": torch.zeros(n_roots, 3, 3), hier.LEVEL: torch.zeros(n_roots),
                               hier.PARENT: torch.full((n_roots,), -1.0)}, MethodSpec("hierarchical", {}))
    for lv in range(1, levels):
        level, _ = hier.tree_of(g)
        hier.add_children(g, [], torch.nonzero(level == lv - 1, as_tuple=True)[0], children, 0.5, gen)
        new = hier.tree_of(g)[0] == lv
        with torch.no_grad():
            g.params["sh0"][new] += 0.3 * torch.randn(int(new.sum()), 1, 3, generator=gen)
    return g


def tagged(g, **opts):
    """A separate scene object on the same tensors with these render options (the options live in
    the scene's method spec, so two option sets need two objects)."""
    from splatlab.gaussians import Gaussians

    base = dict(g.method.options) if g.method is not None else {}
    return Gaussians.from_fields(g.detached_fields(), MethodSpec("hierarchical", {**base, "level": -1, "lod": 0.0, **opts}))


def per_view_render(g, cams: Cameras, bg):
    """The replaced LOD path: one rasterize call per view on that view's cut."""
    from splatlab.render.api import rasterize
    from splatlab.render.path import method_of

    m = method_of(g)
    a = hier.resolve(g)
    out = []
    for cam_ids, rows in m.eval_rows(g, cams, a):
        i = int(cam_ids[0])
        img, _, _ = rasterize(viewmats=cams.viewmats[i:i + 1], Ks=cams.Ks[i:i + 1], width=cams.width,
                              height=cams.height, backgrounds=bg[None], **m._args(a, rows, g.sh_degree))
        out.append(img)
    return torch.cat(out)


def bench_synthetic(args) -> dict:
    import math

    from splatlab.cameras import intrinsics_from_fov, orbit

    g = synthetic_tree(args.roots or 1000, args.children, args.levels, args.seed)
    level, parent = hier.tree_of(g)
    n_full = len(hier.level_cut(level, parent, int(level.max())))
    size = args.size
    K = intrinsics_from_fov(math.radians(50), size, size)
    bg = torch.zeros(3)
    res = {"synthetic": True, "rows": len(g), "finest": n_full, "size": size, "views": args.views,
           "load_before": os.getloadavg(), "rows_out": []}
    print(f"\n== synthetic tree: {args.roots or 1000} roots x {args.children} children, {args.levels} levels = "
          f"{len(g)} rows, finest level {n_full}; {args.views} views at {size}x{size}; torch threads 1; "
          f"load {res['load_before']}")
    print("cams  LOD px  Gaussians/view  frac   PSNR(vs full)  finest ms  LOD ms  speed finest/LOD  "
          "per-view-calls ms  speed finest/per-view")
    g_full = tagged(g)
    with torch.no_grad():  # compile the rasterizer's kernels before timing
        render(g_full, Cameras(orbit(1, 3.0, 20.0), K[None], size, size), background=bg)
    for label, dist in (("near", 3.0), ("far", 6.0)):
        cams = Cameras(orbit(args.views, dist, 20.0), K[None].expand(args.views, 3, 3), size, size)
        for thr in args.thresholds:
            gl = tagged(g, lod=thr)
            times = {"full": [], "lod": [], "per_view": []}
            with torch.no_grad():
                for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
                    for key in times:
                        t0 = time.perf_counter()
                        if key == "full":
                            full = render(g_full, cams, background=bg).images
                        elif key == "lod":
                            lod = render(gl, cams, background=bg).images
                        else:
                            pv = per_view_render(gl, cams, bg)
                        times[key].append(time.perf_counter() - t0)
                a = hier.resolve(g)
                masks = hier.lod_masks(level, parent, hier.projected_size(a["means"], a["log_scales"], cams), thr)
            assert torch.allclose(pv, lod, atol=1e-4), "batched and per-view LOD renders differ"
            t = {k: min(v) for k, v in times.items()}
            drawn = float(masks.sum(dim=1).float().mean())
            row = {"cameras": label, "threshold": thr, "n": drawn, "psnr_vs_full": mean_psnr(lod.clamp(0, 1), full.clamp(0, 1)),
                   "ms_full": 1e3 * t["full"], "ms_lod": 1e3 * t["lod"], "ms_per_view": 1e3 * t["per_view"],
                   "speed_lod": t["full"] / t["lod"], "speed_per_view": t["full"] / t["per_view"]}
            res["rows_out"].append(row)
            print(f"{label:4s}  {thr:6.2f}  {drawn:14.0f}  {drawn / n_full:5.3f}  {row['psnr_vs_full']:13.2f}  "
                  f"{row['ms_full']:9.1f}  {row['ms_lod']:6.1f}  {row['speed_lod']:16.2f}  "
                  f"{row['ms_per_view']:17.1f}  {row['speed_per_view']:21.2f}")
    res["load_after"] = os.getloadavg()
    print(f"load average after: {res['load_after']}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*")
    ap.add_argument("--synthetic", action="store_true", help="time LOD vs finest on a hand-built tree (no training)")
    ap.add_argument("--size", type=int, default=256, help="--synthetic: image size")
    ap.add_argument("--views", type=int, default=4, help="--synthetic: views per batch")
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
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="another hierarchical --method-option (e.g. budget_split=tree); repeatable")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--importance-views", type=int, default=0,
                    help="training views the pruned baseline's importance sums over (0: all; a sample of 20 "
                         "left a quarter of garden's gs3d Gaussians, its far background, at zero importance)")
    ap.add_argument("--far-truth", action="store_true",
                    help="PSNR of the far views against the scene generator's renders of them (bundled scenes)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not args.scenes and not args.synthetic:
        ap.error("give scene folders or --synthetic")
    results = [bench_synthetic(args)] if args.synthetic else []
    results += [bench_scene(s, args) for s in args.scenes]
    path = Path(args.out) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
