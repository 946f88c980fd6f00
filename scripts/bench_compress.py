#!/usr/bin/env python
"""Compare splat containers on one input: bytes, ratio, quality, encode / decode time.

    python scripts/bench_compress.py scene.ply [--scene scenes/robot] [--plas-1m] [--skip-external]

Rows: .ply, compressed .ply, .sog (Morton), .sog (PLAS), `splatlab compress` .sog (with --scene its
encode time includes rendering the training views for importance), .spz, .splat and, when
`.tools/node_modules/.bin/splat-transform` exists (and --skip-external is not given),
`splat-transform -g cpu in.ply out.sog`, stopped after 12x our encode time unless --external-timeout
says otherwise (a stop proves a lower bound on the speed ratio). PSNR/SSIM compare renders of the decoded file against renders
of the input (on the dataset's test cameras with --scene, else on 8 orbit cameras); with --scene
the ground-truth PSNR of each decoded file is shown too. Also prints the neighbour distance of the
PLAS layout vs the Morton layout and, with --plas-1m, times PLAS on a synthetic 1M-Gaussian set.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from splatlab.compress.pipeline import (CompressOptions, compare_renders, compress_scene, load_dataset,  # noqa: E402
                                        render_views, sog_sizes, training_importance)
from splatlab.compress.plas import morton_grid_init, neighbour_distance, plas_sort, standardize  # noqa: E402
from splatlab.io import morton_order, read_splats, sog_texture_size, write_splats  # noqa: E402
from splatlab.io._common import SceneArrays  # noqa: E402
from splatlab.io.sog import write_sog  # noqa: E402

EXTERNAL = os.path.join(ROOT, ".tools", "node_modules", ".bin", "splat-transform")


def orbit_cameras(means: np.ndarray, n: int = 8, size: int = 128):
    c = np.median(means, 0)
    r = np.percentile(np.linalg.norm(means - c, axis=1), 90) * 2.5 + 1e-3
    vms = []
    for k in range(n):
        a = 2 * math.pi * k / n
        eye = c + r * np.array([math.cos(a) * math.cos(0.35), math.sin(a) * math.cos(0.35), math.sin(0.35)])
        f = (c - eye) / np.linalg.norm(c - eye)
        right = np.cross(f, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(f, right)
        R = np.stack([right, down, f])
        vm = np.eye(4)
        vm[:3, :3] = R
        vm[:3, 3] = -R @ eye
        vms.append(vm)
    K = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1.0]])
    return (torch.tensor(np.stack(vms), dtype=torch.float32), torch.tensor(np.stack([K] * n), dtype=torch.float32),
            size, size, torch.ones(3), None)


def scene_cameras(scene_dir: str, downscale: int, max_views: int):
    from splatlab.data import load_scene
    sc = load_scene(scene_dir, downscale=downscale)
    views = sc.test if len(sc.test) else sc.train
    idx = np.linspace(0, len(views) - 1, min(max_views, len(views))).round().astype(int).tolist()
    cams = views.cameras
    gt = [views.load_image(i)[..., :3].float() for i in idx]
    return cams.viewmats[idx].float(), cams.Ks[idx].float(), cams.width, cams.height, sc.background.float(), gt


def fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))


def bench_formats(args, tmp: str) -> None:
    g = read_splats(args.input)
    scene = SceneArrays.from_gaussians(g)
    print(f"input {args.input}: {len(scene)} splats, SH degree {scene.sh_degree}")
    if args.scene:
        cams = scene_cameras(args.scene, args.downscale, args.max_views)
    else:
        cams = orbit_cameras(scene.means)
    vm, K, W, H, bg, gt = cams
    ref = render_views(g, vm, K, W, H, bg)
    ply_path = os.path.join(tmp, "in.ply")
    write_splats(ply_path, g, format="ply")
    ply_bytes = os.path.getsize(ply_path)

    rows = []

    def measure(name, path, encode):
        t0 = time.perf_counter()
        encode(path)
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        dec = read_splats(path)
        dect = time.perf_counter() - t0
        size = os.path.getsize(path)
        out = compare_renders(ref, render_views(dec, vm, K, W, H, bg))
        gtq = compare_renders(gt, render_views(dec, vm, K, W, H, bg)) if gt is not None else None
        rows.append((name, size, ply_bytes / size, out[0], out[1], gtq, enc, dect))

    measure(".ply", os.path.join(tmp, "a.ply"), lambda p: write_splats(p, g, format="ply"))
    measure("compressed .ply", os.path.join(tmp, "a.compressed.ply"), lambda p: write_splats(p, g))
    measure(".sog (Morton)", os.path.join(tmp, "morton.sog"), lambda p: write_sog(p, scene))
    plas_info = {}
    comp_info = {}

    def sog_plas(p):  # pure PLAS layout, all SH bands: the layout comparison against the row above
        plas_info.update(compress_scene(scene, p, CompressOptions(auto_sh=False, morton_fallback=False,
                                                                  plas_time_budget=args.plas_budget)))

    measure(".sog (PLAS)", os.path.join(tmp, "plas.sog"), sog_plas)

    def sog_compress(p):  # what `splatlab compress` writes: with --scene, importance from the training
        # views (timed as part of the encode), pruning, SH pruning, the smaller of PLAS / Morton
        imp = training_importance(g, load_dataset(args.scene, args.downscale)) if args.scene else None
        comp_info.update(compress_scene(scene, p, CompressOptions(plas_time_budget=args.plas_budget), importance=imp))

    measure("splatlab compress .sog", os.path.join(tmp, "compress.sog"), sog_compress)
    measure(".spz", os.path.join(tmp, "a.spz"), lambda p: write_splats(p, g))
    measure(".splat", os.path.join(tmp, "a.splat"), lambda p: write_splats(p, g))
    if not args.skip_external and os.path.exists(EXTERNAL):
        ours = next(r[6] for r in rows if r[0] == "splatlab compress .sog")
        # default: long enough to tell whether ours is >= 10x faster (a timeout proves a lower bound)
        ext_timeout = args.external_timeout or max(60.0, 12.0 * ours)

        def ext(p):
            subprocess.run([EXTERNAL, "-g", "cpu", ply_path, p], check=True, timeout=ext_timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            measure("splat-transform .sog", os.path.join(tmp, "ext.sog"), ext)
        except subprocess.TimeoutExpired:
            print(f"splat-transform -g cpu did not finish within {ext_timeout:.0f} s (stopped): splatlab compress "
                  f"({ours:.1f} s) is >= {ext_timeout / ours:.1f}x faster")
        except (subprocess.SubprocessError, OSError) as e:
            print(f"splat-transform failed: {' '.join(str(e).split())}")

    hdr = ["format", "bytes", "ratio", "PSNR", "SSIM"] + (["PSNR(gt)", "SSIM(gt)"] if gt is not None else []) + \
          ["encode s", "decode s"]
    widths = [22, 11, 7, 7, 7] + ([8, 8] if gt is not None else []) + [9, 9]
    print(f"\nquality vs renders of the input ({len(ref)} views, {W}x{H}); ratio vs .ply ({ply_bytes:,} B)")
    print(fmt_row(hdr, widths))
    for name, size, ratio, p, s, gtq, enc, dect in rows:
        cols = [name, f"{size:,}", f"{ratio:.1f}", "inf" if math.isinf(p) else f"{p:.2f}", f"{s:.4f}"]
        if gt is not None:
            cols += [f"{gtq[0]:.2f}", f"{gtq[1]:.4f}"]
        cols += [f"{enc:.2f}", f"{dect:.2f}"]
        print(fmt_row(cols, widths))
    sog_files = [(n_, f_) for n_, f_ in [("Morton", "morton.sog"), ("PLAS", "plas.sog"), ("compress", "compress.sog"),
                                         ("splat-transform", "ext.sog")] if os.path.exists(os.path.join(tmp, f_))]
    per = {n_: sog_sizes(os.path.join(tmp, f_)) for n_, f_ in sog_files}
    print("\n.sog bytes per attribute")
    print(fmt_row(["attribute"] + [n_ for n_, _ in sog_files], [14] + [15] * len(sog_files)))
    keys = [k for k in per["Morton"] if k != "total"] + ["total"]
    for k in keys:
        print(fmt_row([k] + [f"{per[n_].get(k, 0):,}" for n_, _ in sog_files], [14] + [15] * len(sog_files)))
    print(f"splatlab compress: SH degree {comp_info['sh_degree_in']} -> {comp_info['sh_degree_out']}; layout written: "
          f"{comp_info.get('order_used')} (candidates {comp_info.get('candidate_bytes')})")
    enc = {r[0]: r[6] for r in rows}
    if "splat-transform .sog" in enc:
        ext_s = enc["splat-transform .sog"]
        for name in ("splatlab compress .sog", ".sog (PLAS)", ".sog (Morton)"):
            print(f"encode speed: splat-transform -g cpu {ext_s:.1f} s vs {name} {enc[name]:.2f} s -> "
                  f"{ext_s / enc[name]:.1f}x faster")
    print(f"\nneighbour distance ({plas_info['sort_dims']} standardized dims, grid {plas_info['grid'][0]}x"
          f"{plas_info['grid'][1]}): PLAS {plas_info['neighbour_distance']:.4f} vs Morton "
          f"{plas_info['neighbour_distance_morton']:.4f} (sort {plas_info['sort_seconds']:.1f} s)")


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A scene-like synthetic set: noisy surface points with smooth-ish attributes (14 dims)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    p *= 1 + 0.05 * rng.normal(size=(n, 1))
    colour = np.stack([np.sin(3 * p[:, 0]), np.cos(2 * p[:, 1]), p[:, 2] ** 2], 1) + 0.05 * rng.normal(size=(n, 3))
    scale = rng.normal(size=(n, 3)) * 0.3 + p[:, :1]
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return p, np.concatenate([p, colour, scale, rng.random((n, 1)), q], 1)


def bench_plas_1m(args) -> None:
    n = args.plas_n
    pos, x = synthetic(n)
    f = standardize(x)
    w, h = sog_texture_size(n)
    print(f"\nPLAS on a synthetic set: {n:,} x {f.shape[1]} dims, grid {w}x{h}, budget {args.plas_budget} s")
    t0 = time.perf_counter()
    init = morton_grid_init(pos, w, h)
    res = plas_sort(f, w, h, standardized=True, init_order=init, time_budget=args.plas_budget, verbose=args.verbose)
    total = time.perf_counter() - t0
    d_plas = neighbour_distance(f, res.order, w, h)
    d_m = neighbour_distance(f, morton_order(pos), w, h)
    d_r = neighbour_distance(f, np.random.default_rng(0).permutation(n), w, h)
    print(f"  time {total:.1f} s ({res.radii} radius steps, {res.passes} passes, "
          f"{'full schedule' if args.plas_budget is None else f'budget {args.plas_budget} s'}, "
          f"{numba.get_num_threads()} threads)")
    print(f"  neighbour distance: PLAS {d_plas:.4f}, Morton {d_m:.4f}, 2-D Morton start "
          f"{neighbour_distance(f, init, w, h):.4f}, random {d_r:.4f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", help="splat file to benchmark")
    ap.add_argument("--scene", help="dataset for test cameras and ground truth")
    ap.add_argument("--downscale", type=int, default=1)
    ap.add_argument("--max-views", type=int, default=5)
    ap.add_argument("--plas-1m", action="store_true", help="time PLAS on a synthetic 1M-Gaussian set")
    ap.add_argument("--plas-n", type=int, default=1_000_000, help="size of the synthetic set (default 1M)")
    ap.add_argument("--plas-budget", type=float, default=None, help="PLAS time budget in seconds")
    ap.add_argument("--skip-external", action="store_true", help="do not run splat-transform")
    ap.add_argument("--external-timeout", type=float,
                    help="seconds to let splat-transform run (default: 12x our encode time, at least 60)")
    ap.add_argument("--keep", help="keep the encoded files in this folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not args.input and not args.plas_1m:
        ap.error("give an input splat file and/or --plas-1m")
    if args.input:
        tmp = tempfile.mkdtemp(prefix="bench_compress_")
        try:
            bench_formats(args, tmp)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                for name in os.listdir(tmp):
                    shutil.copy2(os.path.join(tmp, name), args.keep)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.plas_1m:
        bench_plas_1m(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
