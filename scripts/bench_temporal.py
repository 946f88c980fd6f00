#!/usr/bin/env python
"""Memory of the Temporal Gaussian Hierarchy vs video length, against the flat 4D baseline.

    python scripts/make_dynamic_scene.py --frames 192 --out .cache/scenes/dynamic_x8   # 8x the clip
    nice -n 15 python scripts/bench_temporal.py [--steps 30] [--mults 1,2,4,8]

For 1x, 2x, 4x, 8x the short clip (24 frames, the first frames of the long render), trains with
paged training (`splatlab.train.paged`, one window = 12 frames, one more level per doubling so the
finest segment keeps its length in seconds) and with the flat baseline (same 4D Gaussians, every
segment in memory every window). Each run is its own process so peak RSS is its own. Prints per
run: working-set bytes (active parameters + Adam moments), peak RSS, train time, storage, held-out
camera PSNR, Gaussians active per frame and render ms, then the growth ratios 8x / 1x.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BG = (0.62, 0.75, 0.9)


def one_run(scene: str, frames: int, mode: str, steps: int, out: Path) -> dict:
    import torch

    torch.set_num_threads(1)
    from splatlab.data.video import load_video_scene
    from splatlab.train.paged import evaluate_store, train_paged

    bg = torch.tensor(BG)
    s = load_video_scene(scene, background=bg, max_frames=frames)
    mult = frames // 24
    levels = 2 + int(math.log2(mult))
    stats = train_paged(s, out, levels=levels, steps_per_window=steps, n_global=2000, n_per_window=800,
                        flat=(mode == "flat"), background=bg, progress=False)
    stats.update(evaluate_store(out, s.test, bg, max_views=6))
    stats.update(frames=frames, mode=mode, levels=levels)
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(ROOT / ".cache" / "scenes" / "dynamic_x8"))
    ap.add_argument("--steps", type=int, default=30, help="training steps per 12-frame window")
    ap.add_argument("--mults", default="1,2,4,8")
    ap.add_argument("--modes", default="hierarchy,flat")
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "bench_temporal")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: frames:mode
    args = ap.parse_args(argv)
    if args.one:
        frames, mode = args.one.split(":")
        res = one_run(args.scene, int(frames), mode, args.steps, args.out / f"{mode}_{frames}")
        print("RESULT " + json.dumps(res))
        return 0
    if not (Path(args.scene) / "transforms.json").is_file():
        print(f"{args.scene}: no scene; run scripts/make_dynamic_scene.py --frames 192 --out {args.scene}")
        return 1
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for mode in args.modes.split(","):
        for m in (int(x) for x in args.mults.split(",")):
            r = subprocess.run([sys.executable, __file__, "--scene", args.scene, "--steps", str(args.steps),
                                "--out", str(args.out), "--one", f"{24 * m}:{mode}"],
                               capture_output=True, text=True, env=env)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode != 0 or not line:
                print(f"{mode} x{m}: failed\n{r.stderr[-2000:]}")
                return 1
            res = json.loads(line[0][7:])
            results.append(res)
            print(f"{mode:9s} x{m}: frames {res['frames']:4d} levels {res['levels']} | working set "
                  f"{res['peak_working_bytes'] / 1e6:6.2f} MB | peak RSS {res['peak_rss_mb']:6.0f} MB | train "
                  f"{res['train_time_s']:6.1f} s | storage {res['storage_bytes'] / 1e6:5.2f} MB | test-cam PSNR "
                  f"{res['psnr']:5.2f} | active/frame {res['active_gaussians']:7.0f} | render "
                  f"{res['render_ms']:6.1f} ms", flush=True)
    for mode in args.modes.split(","):
        rs = [r for r in results if r["mode"] == mode]
        if len(rs) > 1:
            a, b = rs[0], rs[-1]
            print(f"{mode}: length x{b['frames'] // a['frames']}: working set x"
                  f"{b['peak_working_bytes'] / a['peak_working_bytes']:.2f}, peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}, "
                  f"storage x{b['storage_bytes'] / a['storage_bytes']:.2f}")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
