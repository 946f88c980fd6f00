"""Held-out evaluation of Triplane-Gaussian against the issue's baselines (slow: a script, not a test).

For each object of the chosen splits (`test`: held-out whole objects, `ood`: real meshes never
trained on): input = the first low-elevation view at the network size; metrics (PSNR, SSIM, alpha
IoU) on every other view at 128², white background, for
  * tgs            the model (shipped weights, a weights folder or a train_tgs.py checkpoint)
  * points-only    the ablation without a triplane (`--ablation CKPT`, trained by
                   `train_tgs.py --no-triplane`), when given
  * sphere         an opaque sphere in the input's mean colour (a trivial prior)
  * gs3d-1view     3DGS fitted to the single input view for the same wall time as a tgs prediction
                   (`--gs3d-objects` objects per split; see `fit_gs3d_single_view`)
and an image grid input / prediction / ground truth.

    python scripts/eval_tgs.py --model .cache/tgs_run/ckpt.pt --splits test ood --gs3d-objects 4 \
        --grid grid.png --out metrics.json
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_tgs import LOW_ELEVATION, input_view, load_split  # noqa: E402

from splatlab.cameras import Cameras  # noqa: E402
from splatlab.losses import photometric_loss  # noqa: E402
from splatlab.metrics import psnr, ssim_metric  # noqa: E402
from splatlab.models.tgs import TGSConfig, TriplaneGaussian  # noqa: E402
from splatlab.models.tgs.evaluate import canonical_transform, sphere_baseline  # noqa: E402


def load_any(path: str | None) -> TriplaneGaussian:
    """Shipped weights (None), a weights folder, or a train_tgs.py checkpoint file."""
    if path is None or Path(path).is_dir():
        return TriplaneGaussian.from_pretrained(path).eval()
    ck = torch.load(path, weights_only=False, map_location="cpu")
    cfg = TGSConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in ck["config"].items()})
    model = TriplaneGaussian(cfg)
    model.load_state_dict(ck["model"])
    return model.eval()


def metrics(img: torch.Tensor, alpha: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM over views, alpha IoU over all pixels (threshold 0.5)."""
    inter = ((alpha[..., 0] > 0.5) & (gt[..., 3] > 0.5)).sum().item()
    union = ((alpha[..., 0] > 0.5) | (gt[..., 3] > 0.5)).sum().item()
    return {"psnr": float(np.mean([psnr(img[i], gt[i, ..., :3]) for i in range(len(gt))])),
            "ssim": float(np.mean([ssim_metric(img[i], gt[i, ..., :3]) for i in range(len(gt))])),
            "iou": inter / max(union, 1)}


def fit_gs3d_single_view(model: TriplaneGaussian, image: torch.Tensor, elevation: float, seconds: float,
                         n: int = 2048, seed: int = 0) -> tuple[dict, int]:
    """3DGS optimisation on the one input view, for `seconds` of wall time: Gaussians start at
    random points in the unit sphere (the object's bound) with the input colour where they project
    (a generous start), and Adam with the 3DGS learning rates minimises the gs3d loss
    (0.8·L1 + 0.2·D-SSIM over white) of the input view. No densification (too short to matter)."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(n, 3, generator=g)
    pts = pts / pts.norm(dim=1, keepdim=True) * torch.rand(n, 1, generator=g).pow(1 / 3)
    s = image.shape[0]
    uv = model.project_to_input(pts, elevation)
    px = ((uv + 1) / 2 * s).long().clamp(0, s - 1)
    rgb0 = image[px[:, 1], px[:, 0], :3].clamp(0.02, 0.98)
    params = {"means": pts.clone(), "log_scales": torch.full((n, 3), math.log(0.03)),
              "quats": torch.tensor([1.0, 0, 0, 0]).repeat(n, 1), "logit_op": torch.full((n,), -2.2),
              "logit_rgb": torch.logit(rgb0)}
    for p in params.values():
        p.requires_grad_(True)
    lrs = {"means": 1.6e-4 * 3.0, "log_scales": 5e-3, "quats": 1e-3, "logit_op": 5e-2, "logit_rgb": 2.5e-3 * 10}
    opt = torch.optim.Adam([{"params": [params[k]], "lr": lrs[k]} for k in params], eps=1e-15)
    cam = model.input_camera(s, elevation)
    target = image[None, ..., :3]
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        out = _as_output(params)
        img, _ = model.render_views(out, 0, cam)
        loss = sum(photometric_loss(img, target, 0.2).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    return {k: v.detach() for k, v in _as_output(params).items()}, steps


def _as_output(p: dict) -> dict:
    return {"means": p["means"][None], "scales": p["log_scales"].exp()[None], "quats": p["quats"][None],
            "opacities": torch.sigmoid(p["logit_op"])[None], "rgb": torch.sigmoid(p["logit_rgb"])[None]}


@torch.no_grad()
def predict_seconds(model: TriplaneGaussian, image: torch.Tensor, elevation: float, runs: int = 5) -> float:
    x = image.permute(2, 0, 1)[None]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(x, torch.tensor([elevation]))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def evaluate_object(models: dict, obj: dict, gs3d_seconds: float | None) -> tuple[dict, dict]:
    """Metrics of every model + baselines on one object; also the renders for the grid."""
    inp = input_view(obj)
    elev = float(obj["elevation"][inp])
    novel = [i for i in range(len(obj["elevation"])) if i != inp]
    ref = next(iter(models.values()))
    T = canonical_transform(ref, obj["viewmats"][inp], elev)
    gt = obj["full"][novel]
    cams = Cameras(obj["viewmats"][novel] @ torch.linalg.inv(T), obj["Ks"][novel], gt.shape[2], gt.shape[1])
    row, renders = {}, {}
    for name, model in models.items():
        x = obj["small"][inp]
        with torch.no_grad():
            out = model(x.permute(2, 0, 1)[None], torch.tensor([elev]))
            img, alpha = model.render_views(out, 0, cams)
        row.update({f"{name}_{k}": v for k, v in metrics(img, alpha, gt).items()})
        renders[name] = img
    with torch.no_grad():
        img, alpha = ref.render_views(sphere_baseline(obj["small"][inp]), 0, cams)
    row.update({f"sphere_{k}": v for k, v in metrics(img, alpha, gt).items()})
    if gs3d_seconds is not None:
        out, steps = fit_gs3d_single_view(ref, obj["small"][inp], elev, gs3d_seconds)
        with torch.no_grad():
            img, alpha = ref.render_views(out, 0, cams)
        row.update({f"gs3d_{k}": v for k, v in metrics(img, alpha, gt).items()})
        row["gs3d_steps"] = steps
        row["gs3d_seconds"] = gs3d_seconds
        renders["gs3d"] = img
    renders["gt"] = gt[..., :3]
    renders["input"] = obj["full"][inp][..., :3]
    return row, renders


def save_grid(items: list[tuple[str, dict]], path: Path, view_picks=(8, 27)) -> None:
    """Rows: objects; columns: input | (tgs prediction, ground truth) for two novel views."""
    from PIL import Image

    tiles = []
    for _, r in items:
        cols = [r["input"]]
        for v in view_picks:
            v = min(v, len(r["gt"]) - 1)
            cols += [r["tgs"][v], r["gt"][v]]
        tiles.append(torch.cat([c.clamp(0, 1) for c in cols], 1))
    grid = (torch.cat(tiles, 0).numpy() * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(grid).save(tmp)
    tmp.replace(path)


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "id" and isinstance(rows[0][k], (int, float))]
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        out[k] = float(np.mean(vals))
        out[k + "_n"] = len(vals)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="weights folder or train_tgs.py checkpoint (default: shipped weights)")
    ap.add_argument("--ablation", help="checkpoint of the points-only ablation (train_tgs.py --no-triplane)")
    ap.add_argument("--data", default="/work/data/objects")
    ap.add_argument("--splits", nargs="+", default=["test", "ood"])
    ap.add_argument("--limit", type=int, default=None, help="objects per split (default all)")
    ap.add_argument("--gs3d-objects", type=int, default=0, help="objects per split with the gs3d single-view fit")
    ap.add_argument("--gs3d-seconds", type=float, default=None,
                    help="fit budget (default: the measured median tgs forward time)")
    ap.add_argument("--grid", help="PNG grid input / prediction / ground truth (first objects of each split)")
    ap.add_argument("--grid-rows", type=int, default=3, help="objects per split in the grid")
    ap.add_argument("--out", help="JSON with per-object rows and means")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {"tgs": load_any(args.model)}
    step = None
    if args.model and Path(args.model).is_file():
        step = torch.load(args.model, weights_only=False, map_location="cpu")["state"]["step"]
    if args.ablation:
        models["points_only"] = load_any(args.ablation)
    res = models["tgs"].config.image_size
    result, grid_items = {"splits": {}, "model": args.model or "shipped", "step": step,
                          "ablation": args.ablation}, []
    for split in args.splits:
        objs = load_split(Path(args.data), split, res, limit=args.limit)
        if not objs:
            print(f"{split}: no objects", file=sys.stderr)
            continue
        budget = args.gs3d_seconds
        if budget is None and args.gs3d_objects:
            first = next(iter(objs.values()))
            iv = input_view(first)
            budget = predict_seconds(models["tgs"], first["small"][iv], float(first["elevation"][iv]))
        rows = []
        for i, (oid, obj) in enumerate(objs.items()):
            row, renders = evaluate_object(models, obj, budget if i < args.gs3d_objects else None)
            rows.append({"id": oid, **row})
            print(json.dumps({"split": split, "id": oid, **{k: round(v, 3) for k, v in row.items()}}), flush=True)
            if i < args.grid_rows:
                grid_items.append((oid, renders))
        result["splits"][split] = {"mean": summarise(rows), "objects": rows, "gs3d_budget_seconds": budget}
        print(split, json.dumps({k: round(v, 3) for k, v in result["splits"][split]["mean"].items()}), flush=True)
    result["low_elevation_deg"] = LOW_ELEVATION
    if args.grid and grid_items:
        save_grid(grid_items, Path(args.grid))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
