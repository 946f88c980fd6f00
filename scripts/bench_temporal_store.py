#!/usr/bin/env python
"""Storage, held-out PSNR and 256² render time of a trained `temporal` run as a temporal splat folder (issue 15).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python scripts/bench_temporal_store.py RUN [--sh-min 0,0.02] [--size 256]

For each `--sh-min` (0: lossless; x > 0: rows whose SH bands above 0 change no colour by x or more
keep colour only, `SegmentStore.write_all`), writes the run's model as a segment folder next to
the run (`RUN/segments_<x>`) and prints: its bytes (and the run's `.ply` bytes), the held-out
camera's PSNR over every frame rendered from the folder (only the active segments paged in), and
the render time of every moment at size x size on the CPU backend (that camera, intrinsics scaled;
the fastest of `--repeats`, after one warm-up render; page-in timed apart).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--sh-min", default="0,0.02")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    from splatlab.data.video import load_video_scene
    from splatlab.io import read_splats
    from splatlab.methods.temporal_store import SegmentStore
    from splatlab.render import method_of, render
    from splatlab.train.paged import evaluate_store

    torch.set_num_threads(1)
    run = Path(args.run)
    cfg = json.loads((run / "metrics.json").read_text())["config"]
    bg = torch.tensor(cfg["background"], dtype=torch.float32)
    scene = load_video_scene(cfg["scene"], background=bg)
    ply = run / "point_cloud.ply"
    g = read_splats(ply)
    method = method_of(g)
    print(f"{run}: {len(g)} Gaussians, .ply {ply.stat().st_size / 1e6:.2f} MB, SH degree {g.sh_degree}, "
          f"clip {method.config.duration:g} s")
    for sh_min in (float(x) for x in args.sh_min.split(",")):
        folder = run / f"segments_{sh_min:g}"
        store = SegmentStore.create(folder, method)
        store.write_all(g, sh_min=sh_min)
        with_sh = sum(int(store.read_segment(s["level"], s["segment"])["shN"].abs().amax(dim=(1, 2)).gt(0).sum())
                      for s in store.index["segments"].values())
        ev = evaluate_store(folder, scene.test, bg)
        cams = scene.test.cameras
        ms, loads, counts = [], [], []
        for k, i in enumerate([0] + list(range(len(cams)))):  # the first render warms numba up
            cam = cams[i].scaled(args.size / cams.width)
            t = float(cam.times[0])
            t0 = time.perf_counter()
            gi = store.load_active(t)
            t_load = time.perf_counter() - t0
            best = float("inf")
            with torch.no_grad():
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    out = render(gi, cam, background=bg, backend="cpu")
                    best = min(best, time.perf_counter() - t0)
            assert out.images.shape[1:3] == (args.size, args.size)
            if k:
                ms.append(1000 * best), loads.append(1000 * t_load), counts.append(len(gi))
        print(f"  sh_min {sh_min:g}: folder {store.nbytes() / 1e6:.2f} MB ({len(store.index['segments'])} segments, "
              f"{with_sh} of {store.total_count()} rows with SH bands) | held-out PSNR {ev['psnr']:.2f} dB over "
              f"{ev['views']} frames | {args.size}x{args.size} render median {statistics.median(ms):.1f} ms, max "
              f"{max(ms):.1f} ms over {len(ms)} moments ({min(counts)}..{max(counts)} active rows; page-in median "
              f"{statistics.median(loads):.1f} ms)", flush=True)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
