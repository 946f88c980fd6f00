"""Train every bundled scene with one fixed recipe and print a table.

Columns: scene, resolution, iterations, wall time, iterations/s, final test PSNR/SSIM, Gaussians.
The recipe is meant for CPU machines: a 10-minute budget per scene at 256² on 2 cores.
`--update-readme` writes the table into scenes/README.md's "Training results" section.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from splatlab.train import TrainConfig, run_training

ROOT = Path(__file__).resolve().parents[1]
SCENES = ["robot", "stilllife", "garden"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenes", nargs="*", default=SCENES)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--downscale", type=int, default=1)
    ap.add_argument("--strategy", default="default")
    ap.add_argument("--init-points", type=int, default=20_000)
    ap.add_argument("--cap-max", type=int, default=40_000, help="Gaussian budget (keeps a run inside 10 minutes)")
    ap.add_argument("--update-readme", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenes:
            cfg = TrainConfig(scene=str(ROOT / "scenes" / name), out=str(Path(tmp) / name),
                              iterations=args.iterations, downscale=args.downscale, strategy=args.strategy,
                              init_num_points=args.init_points, cap_max=args.cap_max, eval_every=0, save_every=0,
                              progress=False)  # densify / reset schedule: the defaults scaled to --iterations
            run_training(cfg)
            m = json.loads((Path(tmp) / name / "metrics.json").read_text())
            rows.append((name, m))
            print(json.dumps({"scene": name, **{k: m[k] for k in m if k != "config"}}), flush=True)
    header = "| scene | res | iterations | strategy | wall s | it/s | test PSNR | test SSIM | train PSNR | Gaussians |"
    lines = [header, "|" + "---|" * 10]
    for name, m in rows:
        lines.append(f"| {name} | {256 // args.downscale}² | {args.iterations} | {args.strategy} | "
                     f"{m['wall_time_s']:.0f} | {args.iterations / m['wall_time_s']:.1f} | {m['test']['psnr']:.2f} | "
                     f"{m['test']['ssim']:.3f} | {m['train']['psnr']:.2f} | {m['num_gaussians']} |")
    table = "\n".join(lines)
    print(table)
    if args.update_readme:
        readme = ROOT / "scenes" / "README.md"
        text = readme.read_text()
        block = f"<!-- bench_train -->\n{table}\n<!-- /bench_train -->"
        if "<!-- bench_train -->" in text:
            text = re.sub(r"<!-- bench_train -->.*<!-- /bench_train -->", block, text, flags=re.S)
        else:
            text += f"\n{block}\n"
        readme.write_text(text)


if __name__ == "__main__":
    main()
