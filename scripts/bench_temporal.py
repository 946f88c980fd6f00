#!/usr/bin/env python
"""Memory of the Temporal Gaussian Hierarchy vs video length, against the flat 4D baseline.

    python scripts/make_dynamic_scene.py --frames 192 --out .cache/scenes/dynamic_x8   # 8x the clip
    nice -n 15 python scripts/bench_temporal.py [--steps 30] [--mults 1,2,4,8]

For 1x, 2x, 4x, 8x the short clip (24 frames, the first frames of the long render), trains with
paged training (`splatlab.train.paged`, one window = 12 frames, one more level per doubling so the
finest segment keeps its length in seconds) and with the flat baseline (same 4D Gaussians, every
segment in memory every window). Each run is its own process so peak RSS is its own. Prints per
run: working-set bytes (active parameters + Adam moments), peak RSS and training's part of it (peak
less the RSS once the data and kernels are loaded: ~375 MB of the process is torch/numba/LLVM),
train time, storage, held-out camera PSNR, Gaussians active per frame and render ms, then the
growth ratios 8x / 1x. `--n-global/--n-per-window` size the model (default 2000 + 800 per window).
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


def one_run(scene: str, frames: int, mode: str, steps: int, out: Path, n_global: int, n_per_window: int) -> dict:
    import resource

    import torch

    torch.set_num_threads(1)
    from splatlab.data.video import load_video_scene
    from splatlab.train.paged import evaluate_store, train_paged

    bg = torch.tensor(BG)
    s = load_video_scene(scene, background=bg, max_frames=frames)
    warm_up(scene)  # the kernels loaded before the baseline, so the increment is training's own
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mult = frames // 24
    levels = 2 + int(math.log2(mult))
    stats = train_paged(s, out, levels=levels, steps_per_window=steps, n_global=n_global, n_per_window=n_per_window,
                        flat=(mode == "flat"), background=bg, progress=False)
    stats["rss_before_mb"] = before
    stats.update(evaluate_store(out, s.test, bg, max_views=6))
    stats.update(frames=frames, mode=mode, levels=levels)
    return stats


def warm_up(scene: str) -> None:
    """Decode the videos into the frame cache and compile the CPU kernels (numba's disk cache) once,
    here: otherwise the first run's peak RSS holds them (642 vs 461 MB on a fresh checkout's 1x
    hierarchy run) and the growth ratios compare unlike runs."""
    import torch

    from splatlab.data.video import load_video_scene
    from splatlab.gaussians import Gaussians
    from splatlab.render import render

    s = load_video_scene(scene, background=torch.tensor(BG), max_frames=1)
    gen = torch.Generator().manual_seed(0)
    g = Gaussians.from_points(0.3 * torch.randn(64, 3, generator=gen), torch.rand(64, 3, generator=gen),
                              torch.full((64,), 0.05), opacity=0.5, sh_degree=0)
    render(g, s.train.cameras[0], background=torch.tensor(BG), backend="cpu").images.sum().backward()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default=str(ROOT / ".cache" / "scenes" / "dynamic_x8"))
    ap.add_argument("--steps", type=int, default=30, help="training steps per 12-frame window")
    ap.add_argument("--mults", default="1,2,4,8")
    ap.add_argument("--modes", default="hierarchy,flat")
    ap.add_argument("--n-global", type=int, default=2000, help="Gaussians of the global level (first window)")
    ap.add_argument("--n-per-window", type=int, default=800, help="Gaussians added in every 12-frame window")
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "bench_temporal")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: frames:mode
    args = ap.parse_args(argv)
    if args.one:
        frames, mode = args.one.split(":")
        res = one_run(args.scene, int(frames), mode, args.steps, args.out / f"{mode}_{frames}", args.n_global,
                      args.n_per_window)
        print("RESULT " + json.dumps(res))
        return 0
    if not (Path(args.scene) / "transforms.json").is_file():
        print(f"{args.scene}: no scene; run scripts/make_dynamic_scene.py --frames 192 --out {args.scene}")
        return 1
    warm_up(args.scene)
    results = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "1")}
    for mode in args.modes.split(","):
        for m in (int(x) for x in args.mults.split(",")):
            r = subprocess.run([sys.executable, __file__, "--scene", args.scene, "--steps", str(args.steps),
                                "--out", str(args.out), "--n-global", str(args.n_global), "--n-per-window",
                                str(args.n_per_window), "--one", f"{24 * m}:{mode}"],
                               capture_output=True, text=True, env=env)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
            if r.returncode != 0 or not line:
                print(f"{mode} x{m}: failed\n{r.stderr[-2000:]}")
                return 1
            res = json.loads(line[0][7:])
            results.append(res)
            print(f"{mode:9s} x{m}: frames {res['frames']:4d} levels {res['levels']} | working set "
                  f"{res['peak_working_bytes'] / 1e6:6.2f} MB | peak RSS {res['peak_rss_mb']:6.0f} MB (training "
                  f"+{res['peak_rss_mb'] - res['rss_before_mb']:5.1f}) | train "
                  f"{res['train_time_s']:6.1f} s | storage {res['storage_bytes'] / 1e6:5.2f} MB | test-cam PSNR "
                  f"{res['psnr']:5.2f} | active/frame {res['active_gaussians']:7.0f} | render "
                  f"{res['render_ms']:6.1f} ms", flush=True)
    for mode in args.modes.split(","):
        rs = [r for r in results if r["mode"] == mode]
        if len(rs) > 1:
            a, b = rs[0], rs[-1]
            print(f"{mode}: length x{b['frames'] // a['frames']}: working set x"
                  f"{b['peak_working_bytes'] / a['peak_working_bytes']:.2f}, peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f} "
                  f"(training's increment {a['peak_rss_mb'] - a['rss_before_mb']:.1f} -> "
                  f"{b['peak_rss_mb'] - b['rss_before_mb']:.1f} MB), storage x{b['storage_bytes'] / a['storage_bytes']:.2f}")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
