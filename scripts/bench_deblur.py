"""Deblurring 3DGS against plain 3DGS on blurred captures, scored on sharp test views.

    python scripts/make_scenes.py --only robot --only garden --blur defocus --blur motion --blur none \\
        --res 128 --supersample 1 --train-every 5 --test-every 2          # .cache/scenes/<scene>-<blur>
    python scripts/bench_deblur.py --variants robot-defocus robot-motion robot-sharp \\
        --methods gs3d deblur deblur-motion                               # the README table (1500 steps)
    python scripts/bench_deblur.py --variants robot-motion --methods deblur  # one run (parallel jobs)
    python scripts/bench_deblur.py --table                                 # print what has finished

Each run (variant x method) trains into `.cache/bench_deblur/<variant>__<method>/` and is skipped
when its `metrics.json` exists, so the benchmark can be split over processes, stopped and rerun.
`deblur` uses `kernel=motion` on `*-motion` variants and `kernel=defocus` elsewhere; `deblur+`
adds the paper's point adding and depth pruning. The table prints test PSNR/SSIM on the sharp
test views, Gaussians, wall time (with the load average at the end of the run: timings on a
shared machine) and, per variant, each method's PSNR gain over `gs3d`. No run gets the background
shell (`--background-shell 0`): deblur does not support it yet, so gs3d starts from the same init.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT / ".cache" / "scenes"
RUNS = ROOT / ".cache" / "bench_deblur"
VARIANTS = ["robot-defocus", "robot-motion", "garden-defocus", "garden-motion", "robot-sharp", "garden-sharp"]
METHODS = ["gs3d", "deblur", "deblur-rot", "deblur-norot", "deblur-lens", "deblur-motion", "deblur-paper", "deblur-wide", "deblur+"]


def method_args(variant: str, method: str, copies: int) -> tuple[str, dict]:
    """`deblur`: the method's defaults (`kernel=motion` on `*-motion`, else `defocus`);
    `deblur-rot` / `deblur-norot`: motion copies whose cameras also turn (a learned rotation per view
    and copy; the default since 2026-12-07) or only slide (the kernel before that);
    `deblur-lens`: defocus with a learned thin lens per view (depth-dependent isotropic blur);
    `deblur-motion`: the motion kernel on any variant (the sharp-scene check of the motion kernel);
    `deblur-paper`: motion as the paper has it, per-Gaussian MLP offsets (λp 0.01) instead of one
    shift per view and copy; `deblur-wide`: factors up to 3 (λs 0.1), for blur wider than a
    Gaussian; `deblur+`: wide + point adding + depth pruning."""
    if method == "gs3d":
        return "gs3d", {}
    motion = variant.endswith("-motion") or method == "deblur-motion"
    opts: dict = {"kernel": "motion" if motion else "defocus"}
    if motion:
        opts["copies"] = copies
    if method in ("deblur-rot", "deblur-norot") and motion:
        opts["rotation"] = method == "deblur-rot"
    if method == "deblur-lens" and not motion:
        opts["lens"] = True
    if method == "deblur-paper" and motion:
        opts.update(global_shift=False, lambda_p=0.01)
    if method in ("deblur-wide", "deblur+"):
        opts.update(max_factor=3.0, lambda_s=0.1)
    if method == "deblur+":
        opts.update(add_points=2000, depth_prune=0.02)
    return "deblur", opts


def methods_of(rows: dict, variant: str) -> list[str]:
    """The methods with results for `variant`, in METHODS order (runs with another copy count,
    `deblur-c4`, after their method)."""
    found = {m for v, m in rows if v == variant}
    return sorted(found, key=lambda m: (METHODS.index(re.sub(r"(-c\d+)?(-g[0-9.e-]+)?$", "", m)), m))


def run(variant: str, method: str, args) -> dict | None:
    from splatlab.train import TrainConfig, run_training

    name, opts = method_args(variant, method, args.copies)
    tag = f"-c{args.copies}" if "copies" in opts and args.copies != 2 else ""  # runs with other copy counts apart
    tag += f"-g{args.grad_threshold:g}" if args.grad_threshold != 2e-4 else ""  # and other growth thresholds
    out = RUNS / f"{variant}__{method}{tag}__{args.iterations}"
    metrics = out / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())
    scene = SCENES / variant
    if not scene.is_dir():
        print(f"bench_deblur: {scene} missing (see the make_scenes.py command in this script's docstring)")
        return None
    cfg = TrainConfig(scene=str(scene), out=str(out), method=name, method_options=opts, iterations=args.iterations,
                      init_num_points=args.init_points, eval_every=0, save_every=max(100, args.iterations // 5),
                      refine_start=args.iterations // 6, refine_every=50,
                      resume=str(out) if (out / "checkpoints").is_dir() else None,
                      progress=args.progress, seed=args.seed, sh_degree=args.sh_degree,
                      background_shell=0, grad_threshold=args.grad_threshold)  # deblur has no background shell: every method starts alike
    run_training(cfg)
    m = json.loads(metrics.read_text())
    m["load_avg"] = os.getloadavg()
    metrics.write_text(json.dumps(m, indent=1))
    return m


def table(iterations: int) -> str:
    rows = {}
    for d in sorted(RUNS.glob(f"*__*__{iterations}")):
        f = d / "metrics.json"
        if f.is_file():
            variant, method, _ = d.name.split("__")
            rows[(variant, method)] = json.loads(f.read_text())
    lines = [f"iterations {iterations}",
             "| variant | method | test PSNR | Δ vs gs3d | test SSIM | train PSNR (blurred) | Gaussians | wall s | load avg |",
             "|" + "---|" * 9]
    for variant in VARIANTS:
        base = rows.get((variant, "gs3d"))
        for method in methods_of(rows, variant):
            m = rows[(variant, method)]
            delta = "" if base is None or method == "gs3d" else f"{m['test']['psnr'] - base['test']['psnr']:+.2f}"
            load = m.get("load_avg")
            lines.append(f"| {variant} | {method} | {m['test']['psnr']:.2f} | {delta} | {m['test']['ssim']:.3f} | "
                         f"{m['train']['psnr']:.2f} | {m['num_gaussians']} | {m['wall_time_s']:.0f} | "
                         f"{'' if load is None else f'{load[0]:.1f}'} |")
    return "\n".join(lines)


def evaluate_checkpoints(step: int, iterations: int) -> str:
    """Test PSNR/SSIM of every run's checkpoint at `step` (runs still going, or stopped early)."""
    import torch

    from splatlab.train.checkpoint import load_checkpoint
    from splatlab.train.config import TrainConfig
    from splatlab.train.trainer import Trainer, prepare_scene

    rows = {}
    for d in sorted(RUNS.glob(f"*__*__{iterations}")):
        ck_path = d / "checkpoints" / f"step_{step:07d}.pt"
        if not ck_path.is_file():
            continue
        variant, method, _ = d.name.split("__")
        ck = load_checkpoint(ck_path)
        cfg = TrainConfig.from_dict(ck["config"])
        scene = prepare_scene(cfg)
        with torch.no_grad():
            m = Trainer(cfg, scene, None, checkpoint=ck).evaluate(scene.test)
        rows[(variant, method)] = (m, len(ck["params"]["means"]))
    lines = [f"checkpoint step {step} of {iterations}", "| variant | method | test PSNR | Δ vs gs3d | test SSIM | Gaussians |",
             "|" + "---|" * 6]
    for variant in VARIANTS:
        base = rows.get((variant, "gs3d"))
        for method in methods_of(rows, variant):
            m, n = rows[(variant, method)]
            delta = "" if base is None or method == "gs3d" else f"{m['psnr'] - base[0]['psnr']:+.2f}"
            lines.append(f"| {variant} | {method} | {m['psnr']:.2f} | {delta} | {m['ssim']:.3f} | {n} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="*", default=VARIANTS)
    ap.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--copies", type=int, default=2, help="motion kernel: shifted copies (paper 4; 2 halves the cost)")
    ap.add_argument("--init-points", type=int, default=5000, help="random init for the object scenes")
    ap.add_argument("--sh-degree", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grad-threshold", type=float, default=2e-4,
                    help="densification's 2D-gradient threshold (runs with another value get their own folders)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--table", action="store_true", help="only print the table of finished runs")
    ap.add_argument("--at-step", type=int, default=None,
                    help="only evaluate every run's checkpoint at this step (a table at equal steps mid-run)")
    args = ap.parse_args()
    if args.copies < 1 or args.iterations < 1:
        ap.error(f"--copies and --iterations must be >= 1, got {args.copies} and {args.iterations}")
    if args.at_step is not None:
        print(evaluate_checkpoints(args.at_step, args.iterations))
        return
    if not args.table:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        for variant in args.variants:
            for method in args.methods:
                m = run(variant, method, args)
                if m is not None:
                    print(f"{variant} {method}: test PSNR {m['test']['psnr']:.2f}", flush=True)
    print(table(args.iterations))


if __name__ == "__main__":
    main()
