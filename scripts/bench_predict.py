"""Time `splatlab predict MODEL photo --out x.ply` (issues 14 and 17: at most 1 s per image on 2 cores).

For each model, in one process:
  * first call: load + sha256-check the shipped weights, read the photo, run the network, write the
    .ply, paying lazy imports (and CATSplat's text encoder loading) on the way;
  * in-process: the median (wall and CPU time) of `--runs` further calls, each doing all of the above;
    on a loaded shared machine wall time mostly measures the other jobs, so CPU time is printed too;
  * cold CLI: the whole `python -m splatlab predict ...` subprocess, imports included (`--cli-runs`);
  * baseline: one 256x256 render of the predicted splats through splatlab's CPU rasterizer in the
    same process, so `median_vs_render` is comparable across machines.
Photos: TGS gets the committed test fixture's input view (RGBA), CATSplat a 256x256 RGB photo with a
caption. Prints one JSON line per model with the load average.

    python scripts/bench_predict.py --model tgs --runs 7 --cli-runs 3
    python scripts/bench_predict.py --model catsplat --runs 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TGS_FIXTURE = ROOT / "tests" / "fixtures" / "tgs_test_object.npz"
CAPTION = "a red armchair left of a wooden table, brick wall behind"


def make_photo(model: str, folder: Path) -> tuple[Path, dict]:
    """The model's input photo and its predict options."""
    if model == "tgs":
        with np.load(TGS_FIXTURE) as d:
            img = d["input"][0]
        path = folder / "object.png"
        Image.fromarray(img, "RGBA").save(path)
        return path, {}
    rng = np.random.default_rng(0)
    path = folder / "photo.png"
    Image.fromarray((rng.random((256, 256, 3)) * 255).astype(np.uint8)).save(path)
    return path, {"caption": CAPTION}


def predict_once(model_name: str, photo: Path, options: dict, out: Path) -> tuple[float, float, object]:
    """Everything `predict` does after Python and torch are imported; (wall s, CPU s, Gaussians)."""
    from splatlab.io import write_splats
    from splatlab.models import load_model

    t0, c0 = time.perf_counter(), time.process_time()
    model = load_model(model_name)
    g = model.predict_path(str(photo), options)
    write_splats(out, g)
    return time.perf_counter() - t0, time.process_time() - c0, g


def render_baseline(g) -> float:
    from splatlab.cameras import Cameras, intrinsics_from_fov
    from splatlab.render import render

    viewmat = torch.eye(4)
    viewmat[2, 3] = float(g.means.detach()[:, 2].abs().max()) + 2.0  # in front of the splats
    cams = Cameras(viewmat[None], intrinsics_from_fov(1.0, 256, 256)[None], 256, 256)
    render(g, cams)  # warm the rasterizer's kernels
    t0 = time.perf_counter()
    render(g, cams)
    return time.perf_counter() - t0


def bench(model: str, runs: int, cli_runs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo, options = make_photo(model, tmp)
        first, _, g = predict_once(model, photo, options, tmp / "first.ply")
        timed = [predict_once(model, photo, options, tmp / f"p{i}.ply")[:2] for i in range(runs)]
        cli = []
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        extra = ["--caption", options["caption"]] if "caption" in options else []
        for i in range(cli_runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "splatlab", "predict", model, str(photo), *extra, "--out",
                            str(tmp / f"c{i}.ply")], check=True, env=env, capture_output=True)
            cli.append(time.perf_counter() - t0)
        base = render_baseline(g)
    median = statistics.median(t for t, _ in timed)
    return {"model": model, "first_call_s": round(first, 3), "in_process_median_s": round(median, 3),
            "in_process_cpu_median_s": round(statistics.median(c for _, c in timed), 3),
            "in_process_runs": [round(t, 3) for t, _ in timed],
            "cli_median_s": round(statistics.median(cli), 3) if cli else None, "cli_runs": [round(t, 3) for t in cli],
            "render_256_s": round(base, 4), "median_vs_render": round(median / base, 1), "target_s": 1.0,
            "threads": threads, "load1": os.getloadavg()[0], "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["tgs", "catsplat"], action="append",
                    help="model to time (repeatable; default: both)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cli-runs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2 cores)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.cli_runs < 0 or args.threads < 1:
        ap.error("need --runs >= 1, --cli-runs >= 0, --threads >= 1")
    torch.set_num_threads(args.threads)
    for model in args.model or ["tgs", "catsplat"]:
        print(json.dumps(bench(model, args.runs, args.cli_runs, args.threads)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
