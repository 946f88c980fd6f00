#!/usr/bin/env python
"""How the default `splatlab train SCENE` recipe does on captures it was not tuned on.

    python scripts/bench_generalization.py                       # tuning + held-out seeds + bundled scenes
    python scripts/bench_generalization.py --groups tuning --label try1 -- --prune-screen-size 0.1
    python scripts/bench_generalization.py --src .cache/before_src --label before -- --iterations 3000

Scene groups (fixed before any tuning; never tune on `heldout`):
  tuning    random scenes, seeds 1-4            (scripts/make_random_scene.py)
  heldout   random scenes, seeds 9001-9008
  bundled   scenes/robot, scenes/stilllife, scenes/garden at --resolution 2 (128²)

Each scene is copied into `.cache/bench/<label>/scenes/` first (random scenes without any cached
triangulation), so every label starts from the same data and its own caches. Every run is
`splatlab train` in a subprocess (nice'd, one thread), output in `.cache/bench/<label>/runs/`;
finished runs are skipped, so an interrupted benchmark continues where it stopped. Prints per
scene train/test PSNR, the gap, Gaussians and wall time, then the means per group, with the load
average (the machine is shared: times are only comparable within one table). Also, per scene, the
share of test pixels whose surface fewer than 5 % of the training views contain (content the
training views barely saw), their share of the squared error, and the PSNR of the other pixels
(per view, then averaged like the test PSNR; `scripts/probe_floaters.py` has the same diagnostics and more).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUNING_SEEDS = (1, 2, 3, 4)
HELDOUT_SEEDS = (9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008)
BUNDLED = ("robot", "stilllife", "garden")
DROP = ("points3d.ply", "triangulation.json", ".splatlab_cache")


def scenes_of(group: str, seeds: list[int] | None) -> list[tuple[str, Path, list[str]]]:
    """(name, source folder, extra train args) for a group."""
    if group == "bundled":
        return [(n, ROOT / "scenes" / n, ["--resolution", "2"]) for n in BUNDLED]
    chosen = seeds or (TUNING_SEEDS if group == "tuning" else HELDOUT_SEEDS)
    return [(f"random_{s}", ROOT / ".cache" / "scenes" / f"random_{s}", []) for s in chosen]


def ensure_random_scene(src: Path) -> None:
    if not src.exists():
        seed = src.name.split("_", 1)[1]
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_random_scene.py"), seed], check=True)


def copy_scene(src: Path, dest: Path, keep_points: bool) -> None:
    if dest.exists():
        return
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ignore = None if keep_points else shutil.ignore_patterns(*DROP)
    shutil.copytree(src, tmp, ignore=ignore)
    tmp.rename(dest)


def run_one(label_dir: Path, name: str, src: Path, args: list[str], extra: list[str], code: Path | None) -> dict:
    scene = label_dir / "scenes" / name
    copy_scene(src, scene, keep_points=name in BUNDLED)
    out = label_dir / "runs" / name
    metrics = out / "metrics.json"
    if not metrics.is_file():
        shutil.rmtree(out, ignore_errors=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        # another checkout: put it first and hide the editable install's finder (which wins over sys.path)
        boot = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(f)]; "
                f"sys.path.insert(0, {str(code)!r}); " if code is not None else "import sys; ")
        boot += "from splatlab.cli import main; sys.argv[0] = 'splatlab'; sys.exit(main())"
        cmd = ["nice", "-n", "15", sys.executable, "-c", boot, "train", str(scene), "--out", str(out),
               "--no-progress", *args, *extra]
        print(f"[bench] train {' '.join(cmd[6:])}", flush=True)
        log = label_dir / "runs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as fh:
            rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        if rc != 0 or not metrics.is_file():
            return {"scene": name, "error": f"exit {rc}, see {log}"}
    m = json.loads(metrics.read_text())
    cover = coverage(out)
    return {"scene": name, "train": m["train"]["psnr"], "test": m["test"]["psnr"], "gaussians": m["num_gaussians"],
            "time_s": m["wall_time_s"], "steps": m["steps"], "load": os.getloadavg()[0],
            "unseen_pixels": cover["pixels"][0], "unseen_error": cover["error"][0],
            "observed_psnr": cover["observed_psnr"][0], "pooled_psnr": cover["pooled_psnr"]}


def coverage(run: Path) -> dict:
    """`probe_floaters.coverage_share` of a finished run's test views (cached in the run folder):
    which held-out pixels show a surface fewer than 5 % of the training views contain, their share of
    the error, and the PSNR of the rest (what the training views saw, pooled over the test views)."""
    cached = run / "coverage.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    sys.path.insert(0, str(ROOT / "scripts"))
    from probe_floaters import coverage_share

    from splatlab.data import load_scene
    from splatlab.gaussians import Gaussians
    from splatlab.train import checkpoint as ckpt_io

    ck = ckpt_io.load_checkpoint(ckpt_io.find_checkpoint(run))
    cfg = ck["config"]
    scene = load_scene(cfg["scene"], downscale=cfg["downscale"], background=cfg["background"], cache_images=True)
    result = coverage_share(Gaussians.from_fields(ck["params"]), scene.test, scene.train.cameras, scene.background,
                            fractions=(0.05,))
    cached.write_text(json.dumps(result) + "\n")
    return result


def table(rows: list[dict], group: str) -> str:
    lines = [f"{group}:", f"  {'scene':<14}{'train':>7}{'test':>7}{'gap':>6}{'Gaussians':>11}{'time':>8}"
                          f"{'unseen px':>11}{'its error':>10}{'seen PSNR':>10}"]
    ok = [r for r in rows if "error" not in r]
    for r in rows:
        if "error" in r:
            lines.append(f"  {r['scene']:<14} FAILED {r['error']}")
            continue
        lines.append(f"  {r['scene']:<14}{r['train']:7.2f}{r['test']:7.2f}{r['train'] - r['test']:6.2f}"
                     f"{r['gaussians']:11d}{r['time_s'] / 60:7.1f}m{100 * r['unseen_pixels']:10.1f}%"
                     f"{100 * r['unseen_error']:9.1f}%{r['observed_psnr']:10.2f}")
    if ok:
        mean = lambda k: sum(r[k] for r in ok) / len(ok)  # noqa: E731
        lines.append(f"  {'mean':<14}{mean('train'):7.2f}{mean('test'):7.2f}{mean('train') - mean('test'):6.2f}"
                     f"{int(mean('gaussians')):11d}{mean('time_s') / 60:7.1f}m   "
                     f"(min test {min(r['test'] for r in ok):.2f}, max gap {max(r['train'] - r['test'] for r in ok):.2f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", default="tuning,heldout,bundled", help="comma-separated: tuning, heldout, bundled")
    ap.add_argument("--seeds", type=int, nargs="*", help="random-scene seeds instead of the group's")
    ap.add_argument("--label", default="default", help="results go to .cache/bench/<label>")
    ap.add_argument("--src", type=Path, help="run another checkout's splatlab (e.g. `git archive main` unpacked)")
    args = ap.parse_args(argv)
    label_dir = ROOT / ".cache" / "bench" / args.label
    report = []
    for group in args.groups.split(","):
        rows = []
        for name, src, targs in scenes_of(group, args.seeds):
            if name.startswith("random_"):
                ensure_random_scene(src)
            rows.append(run_one(label_dir, name, src, targs, extra, args.src.resolve() if args.src else None))
            print(json.dumps(rows[-1]), flush=True)
        report.append(table(rows, group))
    text = (f"label {args.label}, train args {' '.join(extra) or '(defaults)'}, "
            f"load average at the end {os.getloadavg()[0]:.2f}\n" + "\n".join(report))
    print(text)
    (label_dir / "summary.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
