"""Time `splatlab predict catsplat photo.png --caption ... --out scene.ply` on a 256x256 photo
(issue 17: at most 1 s on 2 cores).

In-process, everything `predict` does after Python and torch are imported: load + sha256-check the
weights, read the photo, encode the caption (MiniLM), run the network, write the .ply. The first
call (which also pays lazy imports and the text encoder's loading) is reported on its own; then the
median of `--runs`. The baseline in the same process is one 256x256 render of the predicted splats
through splatlab's CPU rasterizer, so the ratio is comparable across machines. Prints one JSON line
with the load average (the machine may be shared).

    python scripts/bench_catsplat_predict.py --runs 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CAPTION = "a red armchair left of a wooden table, brick wall behind"


def predict_once(photo: Path, out: Path):
    from splatlab.io import write_splats
    from splatlab.models import load_model

    t0 = time.perf_counter()
    model = load_model("catsplat")
    g = model.predict_path(str(photo), {"caption": CAPTION})
    write_splats(out, g)
    return time.perf_counter() - t0, g


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2 cores)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from splatlab.cameras import Cameras, intrinsics_from_fov
    from splatlab.render import render

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = tmp / "photo.png"
        rng = np.random.default_rng(0)
        Image.fromarray((rng.random((256, 256, 3)) * 255).astype(np.uint8)).save(photo)
        first, g = predict_once(photo, tmp / "first.ply")
        runs = [predict_once(photo, tmp / f"p{i}.ply")[0] for i in range(args.runs)]
        cams = Cameras(torch.eye(4)[None], intrinsics_from_fov(1.0, 256, 256)[None], 256, 256)
        render(g, cams)  # warm the rasterizer's kernels
        t0 = time.perf_counter()
        render(g, cams)
        base = time.perf_counter() - t0
    median = statistics.median(runs)
    print(json.dumps({"first_call_s": round(first, 3), "median_s": round(median, 3), "runs": [round(r, 3) for r in runs],
                      "render_256_s": round(base, 4), "median_vs_render": round(median / base, 1),
                      "target_s": 1.0, "threads": args.threads, "load1": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
