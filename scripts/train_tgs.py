"""Train Triplane-Gaussian (splatlab.models.tgs) on an object dataset; evaluate; ship the weights.

A flat loop (nanoGPT style): every step takes `--batch` objects, one low-elevation input view each,
predicts Gaussians in the canonical frame, renders the input view plus `--targets` other views
through splatlab's differentiable rasterizer at `--res`² and adds
  L1 + 0.2·D-SSIM (RGB over white)  +  L1 (alpha)  +  `--chamfer` · Chamfer(points, depth points)
where the depth points are all views' depth maps back-projected (the object's visible surface).
Checkpoints every `--save-every` steps (atomic) and resumes from them; `--minutes` bounds the
wall time of this invocation. Loss log CSV + PNG curve in `--out`.

    nice -n 15 python scripts/train_tgs.py --data /work/data/objects --out .cache/tgs_run --minutes 45
    python scripts/train_tgs.py --out .cache/tgs_run --eval-only            # held-out metrics
    python scripts/train_tgs.py --out .cache/tgs_run --ship                 # eval + weights + card

Held-out: the dataset's `test` split (whole objects never trained on) is only evaluated, never
used for tuning; `val` is used for the progress metric.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from splatlab.cameras import Cameras
from splatlab.losses import photometric_loss
from splatlab.models.base import atomic_torch_save
from splatlab.models.tgs import TGSConfig, TriplaneGaussian
from splatlab.models.tgs.evaluate import canonical_transform, fixture_metrics, novel_view_metrics

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ("/work/data/objects", str(ROOT / ".cache" / "blob_objects"))
SHIP_DIR = ROOT / "splatlab" / "models" / "tgs" / "weights"
FIXTURE = ROOT / "tests" / "fixtures" / "tgs_test_object.npz"
LOW_ELEVATION = 35.0  # views below this are "input" views (the dataset's low ring)


# ----------------------------------------------------------------------------------------- data
def read_index(root: Path) -> list[dict]:
    path = root / "index.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: unreadable object index ({exc})")


def load_object(path: Path, res: int, n_points: int = 2048, seed: int = 0, full: bool = True) -> dict:
    """One object: RGBA at `res`² (and at 128² if `full`: evaluation only, to keep training objects
    small in memory), cameras, and surface points from its depth maps."""
    try:
        d = np.load(path)
        rgba8, depth = d["rgba"], d["depth"].astype(np.float32)
        viewmats, Ks, elev = d["viewmats"], d["Ks"], d["elevation_deg"]
    except Exception as exc:
        raise SystemExit(f"{path}: unreadable object ({type(exc).__name__}: {exc})")
    rgba = torch.from_numpy(rgba8).float() / 255.0  # (V, H, W, 4) straight colour
    V, H, W, _ = rgba.shape
    # premultiply before resizing so edges blend towards white correctly
    pm = rgba.clone()
    pm[..., :3] = pm[..., :3] * pm[..., 3:]
    small = F.interpolate(pm.permute(0, 3, 1, 2), size=(res, res), mode="area").permute(0, 2, 3, 1)
    small_white = torch.cat([small[..., :3] + (1 - small[..., 3:]), small[..., 3:]], -1)
    full_white = torch.cat([pm[..., :3] + (1 - pm[..., 3:]), pm[..., 3:]], -1)
    # back-project depth (camera z) of every view into world points
    ys, xs = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    pts = []
    for v in range(V):
        m = depth[v] > 0
        z = depth[v][m]
        K = Ks[v]
        cam = np.stack([(xs[m] - K[0, 2]) / K[0, 0] * z, (ys[m] - K[1, 2]) / K[1, 1] * z, z, np.ones_like(z)], 1)
        pts.append((cam @ np.linalg.inv(viewmats[v]).T)[:, :3])
    pts = np.concatenate(pts) if pts else np.zeros((1, 3))
    rng = np.random.default_rng(seed)
    pts = pts[rng.choice(len(pts), size=min(n_points, len(pts)), replace=False)]
    scale = res / W
    Ks_small = torch.from_numpy(Ks).clone()
    Ks_small[:, :2] *= scale
    return {"full": full_white if full else None, "small": small_white, "viewmats": torch.from_numpy(viewmats),
            "Ks": torch.from_numpy(Ks), "Ks_small": Ks_small, "elevation": torch.from_numpy(elev).float(),
            "points": torch.from_numpy(pts).float(), "size": W}


def load_split(root: Path, split: str, res: int, have: dict | None = None, limit: int | None = None,
               full: bool = True) -> dict:
    have = {} if have is None else have
    for e in read_index(root):
        if e["split"] != split or e["id"] in have:
            continue
        if limit is not None and len(have) >= limit:
            break
        have[e["id"]] = load_object(root / "objects" / f"{e['id']}.npz", res, full=full)
    return have


def canonical(model: TriplaneGaussian, viewmat_in: torch.Tensor, elevation: float) -> torch.Tensor:
    return canonical_transform(model, viewmat_in, elevation)


def sample_views(obj: dict, rng: random.Random, targets: int) -> tuple[int, list[int]]:
    low = [i for i, e in enumerate(obj["elevation"].tolist()) if e < LOW_ELEVATION]
    inp = rng.choice(low)
    others = [i for i in range(len(obj["elevation"])) if i != inp]
    return inp, [inp] + rng.sample(others, min(targets, len(others)))


def model_input(obj: dict, view: int) -> tuple[torch.Tensor, torch.Tensor]:
    return obj["small"][view].permute(2, 0, 1), obj["elevation"][view]


def chamfer(a: torch.Tensor, b: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """Symmetric mean nearest-neighbour distance; with `n`, on a random subset of at most n points
    of each side (the full 2048x2048 distance matrix dominated the step time on the CPU)."""
    if n is not None:
        if len(a) > n:
            a = a[torch.randperm(len(a))[:n]]
        if len(b) > n:
            b = b[torch.randperm(len(b))[:n]]
    d = torch.cdist(a, b)
    return d.min(1).values.mean() + d.min(0).values.mean()


# ----------------------------------------------------------------------------------------- eval
def input_view(obj: dict) -> int:
    """The evaluation input: the first low-elevation view."""
    return [i for i, e in enumerate(obj["elevation"].tolist()) if e < LOW_ELEVATION][0]


def evaluate(model: TriplaneGaussian, objects: dict, max_objects: int | None = None) -> dict:
    """Novel views (every view but the input) at full resolution, white background."""
    rows = []
    for oid, obj in list(objects.items())[:max_objects]:
        inp = input_view(obj)
        novel = [i for i in range(len(obj["elevation"])) if i != inp]
        row = novel_view_metrics(model, obj["small"][inp], float(obj["elevation"][inp]), obj["viewmats"][inp],
                                 obj["full"][novel], obj["viewmats"][novel], obj["Ks"][novel])
        rows.append({"id": oid, **row})
    keys = [k for k in rows[0] if k != "id"] if rows else []
    return {"mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}, "objects": rows}


def write_fixture(model: TriplaneGaussian, objects: dict, path: Path, n_objects: int = 3, views: int = 6) -> dict:
    """A small committed held-out subset for the shipped-weights test: the first `n_objects` test
    objects (by the index's order: chosen by rule, not by result), each with its input view at the
    network size and `views` evenly spaced novel views at full size (uint8, as stored), plus the
    metrics these weights reach on exactly these quantised arrays (the card's subset numbers)."""
    d = {k: [] for k in ("ids", "input", "input_viewmat", "input_elevation", "targets", "viewmats", "Ks")}
    for oid, obj in list(objects.items())[:n_objects]:
        inp = input_view(obj)
        novel = [i for i in range(len(obj["elevation"])) if i != inp]
        novel = novel[:: max(1, len(novel) // views)][:views]
        d["ids"].append(oid)
        d["input"].append((obj["small"][inp].numpy() * 255 + 0.5).astype(np.uint8))
        d["input_viewmat"].append(obj["viewmats"][inp].numpy())
        d["input_elevation"].append(float(obj["elevation"][inp]))
        d["targets"].append((obj["full"][novel].numpy() * 255 + 0.5).astype(np.uint8))
        d["viewmats"].append(obj["viewmats"][novel].numpy())
        d["Ks"].append(obj["Ks"][novel].numpy())
    arrays = {k: np.array(v) if k == "ids" else np.stack(v).astype(np.float32) if k != "input" and k != "targets"
              else np.stack(v) for k, v in d.items()}
    rows = fixture_metrics(model, arrays)
    for k in rows[0]:
        if k != "id":
            arrays[f"expected_{k}"] = np.array([r[k] for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return {"ids": [r["id"] for r in rows], "views": views,
            **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "id"}}


# ----------------------------------------------------------------------------------------- io
def plot_curve(log_path: Path, png: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(log_path)))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in ("loss", "rgb", "alpha", "chamfer"):
        vals = np.array([float(r[k]) for r in rows])
        w = min(25, len(vals))
        ax.plot(steps[w - 1:], np.convolve(vals, np.ones(w) / w, mode="valid"), label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def find_data(arg: str | None) -> Path:
    for c in ([arg] if arg else list(DEFAULT_DATA)):
        p = Path(c)
        if (p / "index.json").is_file() and any(e["split"] == "train" for e in read_index(p)):
            return p
    raise SystemExit(f"no object dataset with training objects at {arg or ' or '.join(DEFAULT_DATA)}")


# ----------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help=f"object dataset folder (default: first of {DEFAULT_DATA} that exists)")
    ap.add_argument("--out", default=str(ROOT / ".cache" / "tgs_run"))
    ap.add_argument("--minutes", type=float, default=45.0, help="wall-time budget of this invocation")
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--targets", type=int, default=3, help="novel views rendered per object (plus the input view)")
    ap.add_argument("--queries", type=int, default=None, help="coarse points (new runs; default: TGSConfig's)")
    ap.add_argument("--children", type=int, default=None, help="fine points per coarse point (new runs)")
    ap.add_argument("--image-size", type=int, default=None, help="network input size (new runs)")
    ap.add_argument("--no-triplane", action="store_true", help="points-only ablation (new runs)")
    ap.add_argument("--split", default="test", help="split evaluated by --eval-only / --ship (test, ood, val)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--chamfer", type=float, default=1.0)
    ap.add_argument("--decay-from", type=int, default=None,
                    help="from this step, cosine-decay the lr to --lr-min over --decay-steps (default: constant lr)")
    ap.add_argument("--decay-steps", type=int, default=1000)
    ap.add_argument("--lr-min", type=float, default=5e-5)
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--rescan-every", type=int, default=100, help="re-read the index for new objects")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--ship", action="store_true", help="write shipped weights + card + test fixture")
    ap.add_argument("--eval-json", help="--ship: scripts/eval_tgs.py's JSON for this checkpoint")
    ap.add_argument("--bench-json", help="--ship: scripts/bench_predict.py --model tgs's JSON line")
    ap.add_argument("--grid", help="--ship: the input/prediction/ground-truth PNG to put beside the card")
    ap.add_argument("--ship-dir", default=str(SHIP_DIR))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "ckpt.pt", out / "log.csv"

    ck = torch.load(ckpt_path, weights_only=False) if ckpt_path.is_file() else None
    if ck is not None and "config" in ck:
        config = TGSConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck["config"].items()})
    else:
        over = {k: v for k, v in (("point_queries", args.queries), ("children", args.children),
                                  ("image_size", args.image_size)) if v is not None}
        config = TGSConfig(**over, use_triplane=not args.no_triplane)
    model = TriplaneGaussian(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    state = {"step": 0, "train_seconds": 0.0, "loads": [], "data": None}
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed from {ckpt_path} at step {state['step']} ({state['train_seconds'] / 60:.1f} min trained)")
    data_root = Path(state["data"]) if state.get("data") and not args.data else find_data(args.data)
    state["data"] = str(data_root)
    res = config.image_size

    if args.eval_only:
        test = load_split(data_root, args.split, res)
        result = evaluate(model, test)
        print(json.dumps(result["mean"], indent=1))
        (out / f"{args.split}_metrics.json").write_text(json.dumps(result, indent=1))
        return 0
    if args.ship:
        if not args.eval_json:
            raise SystemExit("--ship needs --eval-json (from scripts/eval_tgs.py on this checkpoint)")
        ev = json.loads(Path(args.eval_json).read_text())
        if ev.get("step") != state["step"]:
            raise SystemExit(f"{args.eval_json}: evaluated step {ev.get('step')}, checkpoint is at step {state['step']}")
        bench = json.loads(Path(args.bench_json).read_text()) if args.bench_json else None
        test = load_split(data_root, "test", res)
        fixture = write_fixture(model, test, FIXTURE)
        print("fixture", json.dumps(fixture))
        ship(model, state, ev, bench, data_root, Path(args.ship_dir), fixture, args.grid)
        return 0

    state.setdefault("lr_schedule", [])
    if args.decay_from is not None:
        state["lr_schedule"].append({"from_step": state["step"], "decay_from": args.decay_from,
                                     "decay_steps": args.decay_steps, "lr": args.lr, "lr_min": args.lr_min})
    state["targets"] = args.targets
    state["batch"] = args.batch
    train = load_split(data_root, "train", res, full=False)
    val = load_split(data_root, "val", res, limit=3)
    print(f"data {data_root}: {len(train)} train objects, {len(val)} val objects")
    rng = random.Random(args.seed * 1000003 + state["step"])
    torch.manual_seed(args.seed + state["step"])
    new_log = not log_path.is_file()
    log = open(log_path, "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "loss", "rgb", "alpha", "chamfer", "seconds", "load1", "objects"])
    t_start = time.time()
    bar = tqdm(total=args.steps, initial=state["step"], desc="train tgs", file=sys.stdout, mininterval=10)
    warmup = 100
    try:
        while state["step"] < args.steps and (time.time() - t_start) < args.minutes * 60:
            t0 = time.time()
            step = state["step"]
            lr = args.lr * min(1.0, (step + 1) / warmup)
            if args.decay_from is not None and step >= args.decay_from:
                t = min(1.0, (step - args.decay_from) / max(1, args.decay_steps))
                lr = args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * t))
            for g in opt.param_groups:
                g["lr"] = lr
            ids = rng.sample(list(train), min(args.batch, len(train)))
            images, elevs, views, Ts = [], [], [], []
            for oid in ids:
                inp, tv = sample_views(train[oid], rng, args.targets)
                im, el = model_input(train[oid], inp)
                images.append(im)
                elevs.append(el)
                views.append(tv)
                Ts.append(canonical(model, train[oid]["viewmats"][inp], float(el)))
            model.train()
            outp = model(torch.stack(images), torch.stack(elevs))
            l_rgb = l_alpha = l_cd = 0.0
            for b, oid in enumerate(ids):
                obj, tv, T = train[oid], views[b], Ts[b]
                cams = Cameras(obj["viewmats"][tv] @ torch.linalg.inv(T), obj["Ks_small"][tv], res, res)
                img, alpha = model.render_views(outp, b, cams)
                gt = obj["small"][tv]
                terms = photometric_loss(img, gt[..., :3], 0.2)
                l_rgb = l_rgb + sum(terms.values())
                l_alpha = l_alpha + (alpha[..., 0] - gt[..., 3]).abs().mean()
                pts = obj["points"] @ T[:3, :3].T + T[:3, 3]
                l_cd = l_cd + chamfer(outp["coarse"][b], pts, 768) + chamfer(outp["points"][b], pts, 768)
            n = len(ids)
            loss = (l_rgb + l_alpha + args.chamfer * l_cd) / n
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state["step"] += 1
            dt = time.time() - t0
            state["train_seconds"] += dt
            load1 = os.getloadavg()[0]
            state["loads"].append(load1)
            writer.writerow([state["step"], f"{loss.item():.5f}", f"{float(l_rgb.detach()) / n:.5f}", f"{float(l_alpha.detach()) / n:.5f}",
                             f"{float(l_cd.detach()) / n:.5f}", f"{dt:.2f}", f"{load1:.2f}", len(train)])
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", cd=f"{float(l_cd.detach()) / n:.3f}")
            if state["step"] % args.save_every == 0:
                log.flush()
                atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                             "config": model.config_dict()["config"]}, ckpt_path)
                plot_curve(log_path, out / "loss.png")
            if state["step"] % args.rescan_every == 0:
                before = len(train)
                load_split(data_root, "train", res, have=train, full=False)
                if len(train) > before:
                    print(f"\nstep {state['step']}: {len(train)} train objects now")
                if val and state["step"] % (2 * args.rescan_every) == 0:
                    m = evaluate(model, val)["mean"]
                    print(f"\nstep {state['step']} val: psnr {m['tgs_psnr']:.2f} (sphere {m['sphere_psnr']:.2f}) "
                          f"iou {m['tgs_iou']:.3f}")
    except KeyboardInterrupt:
        print("\ninterrupted: saving a checkpoint")
    finally:
        bar.close()
        log.flush()
        state["train_objects"] = len(train)
        atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                             "config": model.config_dict()["config"]}, ckpt_path)
        plot_curve(log_path, out / "loss.png")
    print(f"step {state['step']}, {state['train_seconds'] / 60:.1f} min trained; checkpoint {ckpt_path}")
    return 0


def _table(split: dict, names: list[tuple[str, str]]) -> str:
    m = split["mean"]
    lines = ["| | PSNR (dB) | SSIM | alpha IoU | objects |", "|---|---|---|---|---|"]
    for key, label in names:
        if f"{key}_psnr" in m:
            lines.append(f"| {label} | {m[key + '_psnr']:.2f} | {m[key + '_ssim']:.3f} | {m[key + '_iou']:.3f} | "
                         f"{m[key + '_psnr_n']} |")
    return "\n".join(lines)


def _per_object(split: dict, names: list[str]) -> str:
    have = [n for n in names if f"{n}_psnr" in split["objects"][0]]
    head = "| id | " + " | ".join(f"{n} PSNR / SSIM / IoU" for n in have) + " |"
    rows = [head, "|---" * (len(have) + 1) + "|"]
    for r in split["objects"]:
        cells = [f"{r[n + '_psnr']:.2f} / {r[n + '_ssim']:.3f} / {r[n + '_iou']:.3f}" if n + "_psnr" in r else "–"
                 for n in have]
        rows.append(f"| {r['id']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ship(model: TriplaneGaussian, state: dict, ev: dict, bench: dict | None, data_root: Path, ship_dir: Path,
         fixture: dict, grid: str | None) -> None:
    """save_pretrained + the model card with the measured numbers (+ the grid image beside it)."""
    index = read_index(data_root)
    n_params = sum(p.numel() for p in model.parameters())
    loads = state.get("loads") or [float("nan")]
    c = model.config
    names = [("tgs", "**tgs**"), ("points_only", "points-only ablation (no triplane)"),
             ("gs3d", "gs3d fitted to the input view, same wall time"), ("sphere", "mean-colour sphere")]
    sections = []
    for split, title in (("test", "Held-out test objects (never trained on)"),
                         ("ood", "Out-of-distribution real meshes (`real-*`, never trained on)")):
        if split in ev["splits"]:
            sp = ev["splits"][split]
            sections.append(f"### {title}\n\n{_table(sp, names)}\n\ngs3d budget: {sp.get('gs3d_budget_seconds') or 0:.2f} s "
                            f"per object (the median tgs forward time), on the first objects only (column `objects`).\n\n"
                            f"<details><summary>per object</summary>\n\n{_per_object(sp, [n for n, _ in names])}\n\n</details>")
    bench_line = ("not measured" if bench is None else
                  f"median {bench['in_process_median_s']:.2f} s in-process (load + sha256 check + mask + network + "
                  f".ply), {bench['cli_median_s']:.2f} s as a cold `python -m splatlab predict` subprocess "
                  f"(imports included); {bench['threads']} threads, 1-min load average {bench['load1']:.1f} "
                  "(`scripts/bench_predict.py --model tgs`)")
    card = CARD.format(
        params=n_params, mb=n_params * 4 / 1e6, n_gauss=c.n_gaussians, size=c.image_size, cfg=json.dumps(model.config_dict()["config"]),
        n_train=state.get("train_objects"), n_index=len(index), steps=state["step"], batch=state.get("batch", 2),
        targets=state.get("targets", 3), minutes=state["train_seconds"] / 60, load_mean=float(np.mean(loads)),
        load_max=float(np.max(loads)), host=f"{platform.machine()}, {os.cpu_count()} cores shared", torch=torch.__version__,
        sections="\n\n".join(sections), bench=bench_line, fx_ids=", ".join(fixture["ids"]), fx_views=fixture["views"],
        fx_psnr=fixture["tgs_psnr"], fx_ssim=fixture["tgs_ssim"], fx_iou=fixture["tgs_iou"],
        fx_sphere=fixture["sphere_psnr"], queries=c.point_queries, children=c.children)
    folder = model.save_pretrained(ship_dir, card=card)
    if grid:
        import shutil
        tmp = folder / ".grid.png.tmp"
        shutil.copyfile(grid, tmp)
        os.replace(tmp, folder / "grid.png")
    print(f"shipped {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


CARD = """# Triplane-Gaussian (splatlab `tgs`) — model card

One RGBA image (object on white, {size}² network input) → {n_gauss} 3D Gaussians.
Trained from scratch by `scripts/train_tgs.py` on this machine; licence: same as splatlab.

## Architecture ({params:,} parameters, {mb:.1f} MB fp32)
- Image encoder: our own 3-stage CNN (conv-GroupNorm-SiLU, stride 2 each) → tokens at 1/8, learned
  positions, FiLM camera conditioning from the input elevation (zero-initialised), transformer layer(s).
- Point decoder: {queries} learned queries, transformer-decoder layers (self + cross-attention to the
  image tokens) → coarse xyz; each point spawns {children} children → {n_gauss} points.
- Triplane decoder: learned plane tokens + the coarse points' features mean-pooled into plane cells
  (local-pool PointNet), transformer-decoder layers attending to the image tokens, ConvTranspose ×2.
- Gaussian MLP on [3 plane samples, projected 1/4-res image features + RGBA at the point's
  projection, point feature, xyz] → offset, scale, rotation, opacity, colour (residual over the
  projected input colour). SH degree 0.
- Frame (upright): object at the origin, world z up, input camera at 3·(0, −cos e, sin e) for its
  elevation e, fov 40°: only the input azimuth is normalised away.
- Config: `{cfg}`

## Data
- `/work/data/objects` from `scripts/make_objects.py` (procedural compositions `proc-*` and
  pybullet random shapes `urdf-*` with procedural textures, 32 views at 128²: 24 low ring at
  −10…30°, 8 high at 50…85°), read while it was still being generated: {n_train} training objects
  were loaded by the end of training ({n_index} objects of all splits in the index when shipped).
  Splits by id hash; `test` never trained on nor used for choices; `ood` = real meshes.

## Training
- {steps} steps, batch {batch} objects; input = a random low-ring view; loss on renders of the
  input view + {targets} random other views at {size}²: L1 + 0.2·D-SSIM (RGB over white) + L1 (alpha)
  + Chamfer (coarse and fine points vs back-projected depth, 768-point subsets). AdamW lr 1e-3,
  100-step warm-up, grad clip 1.
- Wall time {minutes:.1f} min of training on {host} (torch {torch}), `nice -n 15`, 1 thread,
  shared with other jobs: 1-minute load average mean {load_mean:.1f}, max {load_max:.1f}.

## Results (novel views = every view but the input, 128², white background)

{sections}

![input | prediction | ground truth, two novel views](grid.png)

Prediction time: {bench}.

Committed subset (`tests/fixtures/tgs_test_object.npz`: test objects {fx_ids}, {fx_views} novel views
each at 128²; `tests/test_tgs.py` checks that the shipped weights reproduce it within 0.5 dB):
tgs {fx_psnr:.2f} dB / SSIM {fx_ssim:.3f} / IoU {fx_iou:.3f}; sphere {fx_sphere:.2f} dB.
"""


if __name__ == "__main__":
    raise SystemExit(main())
