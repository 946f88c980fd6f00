#!/usr/bin/env python
"""Per-frame 3DGS baseline for issue 15's storage criterion: gs3d trained on one moment of the clip.

    nice -n 15 python scripts/bench_perframe_gs3d.py [--scene scenes/dynamic] [--frames 0,12]

For each picked frame, trains plain `gs3d` (the default fast recipe, plane-sweep init) on the 11
training cameras' images of that frame alone and evaluates it on the held-out camera's image of
the same frame. Prints per frame: Gaussians, `.ply` bytes, held-out PSNR, and the means. Per-frame
3DGS of a clip of F frames stores F such models, so its storage is F x the mean `.ply` size
(extrapolated from the frames trained here, said so in the output).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BG = (0.62, 0.75, 0.9)


def one_frame(scene, k: int):
    """The scene restricted to its k-th moment (train and held-out views of that frame)."""
    import dataclasses

    import torch

    times = torch.unique(scene.train.cameras.times)
    t = float(times[k])
    pick = lambda views: [i for i in range(len(views)) if abs(float(views.cameras.times[i]) - t) < 1e-6]  # noqa: E731
    return dataclasses.replace(scene, train=scene.train.subset(pick(scene.train)),
                               test=scene.test.subset(pick(scene.test))), t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(ROOT / "scenes" / "dynamic"))
    ap.add_argument("--frames", default="0,12", help="frame indices to train on (comma separated)")
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "bench_perframe_gs3d")
    args = ap.parse_args(argv)

    import torch

    from splatlab.data.video import load_video_scene
    from splatlab.train import TrainConfig, run_training

    scene = load_video_scene(args.scene, background=BG)
    n_frames = len(torch.unique(scene.train.cameras.times))
    rows = []
    for k in (int(x) for x in args.frames.split(",")):
        sub, t = one_frame(scene, k)
        out = args.out / f"frame{k:04d}"
        cfg = TrainConfig(scene=args.scene, method="gs3d", iterations=args.iterations, background=BG,
                          out=str(out), eval_every=0)
        cfg.apply_preset({"iterations", "eval_every"})
        t0 = time.perf_counter()
        res = run_training(cfg, scene=sub)
        ply = out / "point_cloud.ply"
        m = json.loads((out / "metrics.json").read_text())
        row = {"frame": k, "time": t, "train_views": len(sub.train), "test_views": len(sub.test),
               "gaussians": m["num_gaussians"], "ply_bytes": ply.stat().st_size, "psnr": m["test"]["psnr"],
               "train_s": time.perf_counter() - t0}
        del res
        rows.append(row)
        print("ROW " + json.dumps(row), flush=True)
    mean_bytes = sum(r["ply_bytes"] for r in rows) / len(rows)
    mean_psnr = sum(r["psnr"] for r in rows) / len(rows)
    print(f"per-frame gs3d: mean .ply {mean_bytes / 1e6:.2f} MB, mean held-out PSNR {mean_psnr:.2f} dB over "
          f"{len(rows)} trained frame(s); x {n_frames} frames = {n_frames * mean_bytes / 1e6:.1f} MB for the clip "
          f"(extrapolated from the frames trained)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
