#!/usr/bin/env python
"""Which Gaussians of a trained run are floaters? Prune them by a criterion and re-measure.

    python scripts/probe_floaters.py .cache/bench/base/runs/random_1
    python scripts/probe_floaters.py RUN --fractions 0.1 0.2 --screen 0.15 0.3 --train-every 3

A cheap screen for the pruning-style floater controls before paying for full trainings: it takes
the run's last checkpoint and, for each criterion, deletes the Gaussians it flags and renders the
test views (and every `--train-every`-th training view) again. A criterion that removes floaters
raises test PSNR while train PSNR barely moves; one that removes scene content lowers both.
Criteria (the same functions the trainer's options use):

  view fraction f   inside the camera rig and contained by < f of the training views (--prune-view-fraction)
  screen s          wider than s of the image in some training view (--prune-screen-size)

Post-hoc pruning is not the same as pruning during training (there, the optimiser re-fits what
is left), so a positive screen still needs a full training to confirm.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from splatlab.data import load_scene  # noqa: E402
from splatlab.densify.floaters import views_containing  # noqa: E402
from splatlab.gaussians import Gaussians  # noqa: E402
from splatlab.metrics import psnr  # noqa: E402
from splatlab.render import render  # noqa: E402
from splatlab.train import checkpoint as ckpt_io  # noqa: E402


@torch.no_grad()
def measure(g: Gaussians, views, idx: list[int], background, radii_out: torch.Tensor | None = None) -> float:
    """Mean PSNR over views `idx`; with `radii_out`, also the largest screen radius (pixels) of each Gaussian."""
    ps = []
    for i in idx:
        out = render(g, views.cameras[i], background=background)
        ps.append(psnr(out.images[0].clamp(0, 1), views.load_image(i)))
        if radii_out is not None:
            r = out.meta.radii[0].max(dim=-1).values.float()
            torch.maximum(radii_out, r, out=radii_out)
    return sum(ps) / len(ps)


@torch.no_grad()
def near_floater_share(g: Gaussians, views, background, centre: torch.Tensor) -> dict[str, float]:
    """How much of the held-out views' images and error near-camera Gaussians account for."""
    pix = err_near = err_all = err_top = 0.0
    total = 0
    for i in range(len(views)):
        cam = views.cameras[i]
        vm = cam.viewmats[0].float()
        depth = g.params["means"].detach() @ vm[2, :3] + vm[2, 3]
        limit = 0.5 * (centre - cam.centers[0].float()).norm()
        flag = (depth < limit).float()[:, None].repeat(1, 3)
        w = render(g, cam, colors=flag, background=torch.zeros(3)).images[0, ..., 0]
        out = render(g, cam, background=background).images[0].clamp(0, 1)
        se = ((out - views.load_image(i)) ** 2).sum(-1)
        mask = w > 0.1
        pix += float(mask.float().sum())
        total += mask.numel()
        err_near += float(se[mask].sum())
        err_all += float(se.sum())
        err_top += float(se[: se.shape[0] // 2].sum())
    return {"pixels": pix / total, "error": err_near / max(err_all, 1e-12), "top": err_top / max(err_all, 1e-12)}


@torch.no_grad()
def coverage_share(g: Gaussians, views, train_cams, background, fractions=(0.05, 0.15)) -> dict[str, list[float]]:
    """Share of the held-out pixels, and of their squared error, whose surface (the render's expected
    depth) fewer than each fraction of the training views contain: content no floater control can
    recover, because too few training views saw it. Also the PSNR of the other pixels (`observed_psnr`,
    one value per fraction, per view then averaged like the test PSNR): how well what the training
    views did see generalises. Pixels the render leaves (nearly) empty count as seen: with alpha, they
    are the background; in an opaque capture without the background shell they are sky nothing covers
    (so compare these numbers between runs with the shell only)."""
    n_train = len(train_cams)
    pix = [0.0] * len(fractions)
    err = [0.0] * len(fractions)
    seen_psnr: list[list[float]] = [[] for _ in fractions]
    total = err_all = 0.0
    for i in range(len(views)):
        cam = views.cameras[i]
        out = render(g, cam, background=background, render_mode="RGB+ED")
        rgb, z = out.images[0, ..., :3].clamp(0, 1), out.images[0, ..., 3]
        se = ((rgb - views.load_image(i)) ** 2).sum(-1)
        H, W = z.shape
        K = cam.Ks[0].float()
        v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
        local = torch.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], dim=-1).reshape(-1, 3)
        c2w = cam.camtoworlds[0].float()
        world = local @ c2w[:3, :3].T + c2w[:3, 3]
        count = views_containing(world, train_cams.viewmats, train_cams.Ks, train_cams.width,
                                 train_cams.height).reshape(H, W)
        # a (nearly) empty pixel shows no surface: the background colour of a capture with alpha
        count = torch.where(out.alphas[0, ..., 0] < 0.5, torch.full_like(count, n_train), count)
        total += H * W
        err_all += float(se.sum())
        for k, f in enumerate(fractions):
            m = count < f * n_train
            pix[k] += float(m.sum())
            err[k] += float(se[m].sum())
            if bool((~m).any()):
                seen_psnr[k].append(-10.0 * math.log10(max(float(se[~m].mean()) / 3.0, 1e-12)))
    # per view PSNR over the pixels the training views saw, averaged over views (as the test PSNR is)
    observed = [sum(v) / max(len(v), 1) for v in seen_psnr]
    return {"fractions": list(fractions), "pixels": [p / total for p in pix],
            "error": [e / max(err_all, 1e-12) for e in err], "observed_psnr": observed,
            "pooled_psnr": -10.0 * math.log10(max(err_all, 1e-12) / max(3.0 * total, 1.0))}


def subset(g: Gaussians, keep: torch.Tensor) -> Gaussians:
    return Gaussians.from_fields({k: v.detach()[keep] for k, v in g.params.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run folder (its last checkpoint) or a checkpoint file")
    ap.add_argument("--fractions", type=float, nargs="*", default=[0.05, 0.1, 0.2])
    ap.add_argument("--screen", type=float, nargs="*", default=[0.15, 0.3])
    ap.add_argument("--train-every", type=int, default=3, help="re-measure every k-th training view")
    ap.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                    help="skip the near-camera and coverage shares of the held-out error")
    args = ap.parse_args(argv)
    path = ckpt_io.find_checkpoint(args.run)
    ck = ckpt_io.load_checkpoint(path)
    run = ckpt_io.run_dir_of(path)
    cfg = ck["config"]
    scene = load_scene(cfg["scene"], downscale=cfg["downscale"], background=cfg["background"], cache_images=True)
    g = Gaussians.from_fields(ck["params"])
    train, test = scene.train, scene.test
    bg = scene.background
    n = len(g)
    radii = torch.zeros(n)
    all_train = list(range(len(train)))
    sub_train = all_train[:: args.train_every]
    base_train_full = measure(g, train, all_train, bg, radii)
    base = {"train": measure(g, train, sub_train, bg), "test": measure(g, test, list(range(len(test))), bg)}
    cams = train.cameras
    count = views_containing(g.params["means"], cams.viewmats, cams.Ks, cams.width, cams.height)
    centre = cams.centers.float().mean(0)
    inside = (g.params["means"].detach() - centre).norm(dim=1) <= scene.scene_scale
    frac = radii / float(max(scene.width, scene.height))
    criteria = {f"view fraction {f}": inside & (count < f * len(train)) for f in args.fractions}
    criteria.update({f"screen {s}": frac > s for s in args.screen})
    rows = [{"criterion": "none", "pruned": 0, **base}]
    for name, flag in criteria.items():
        keep = ~flag
        h = subset(g, keep)
        rows.append({"criterion": name, "pruned": int(flag.sum()),
                     "train": measure(h, train, sub_train, bg), "test": measure(h, test, list(range(len(test))), bg)})
    print(f"{args.run}: {n} Gaussians, step {ck['step']}, train PSNR (all views) {base_train_full:.2f}; "
          f"train below = every {args.train_every}th view")
    print(f"  {'criterion':<22}{'pruned':>8}{'train':>8}{'test':>8}{'gap':>7}{'Δtest':>8}")
    for r in rows:
        print(f"  {r['criterion']:<22}{r['pruned']:8d}{r['train']:8.2f}{r['test']:8.2f}"
              f"{r['train'] - r['test']:7.2f}{r['test'] - base['test']:8.2f}")
    if not args.diagnostics:
        return 0
    near = near_floater_share(g, test, bg, centre)
    print(f"  test views: pixels with > 0.1 blending weight from Gaussians nearer the camera than half its "
          f"distance to the rig centre: {100 * near['pixels']:.1f}% of pixels, {100 * near['error']:.1f}% of the "
          f"squared error; squared error in the top / bottom half of the image: {100 * near['top']:.0f}% / "
          f"{100 - 100 * near['top']:.0f}%")
    cover = coverage_share(g, test, cams, bg)
    for f, p, e in zip(cover["fractions"], cover["pixels"], cover["error"]):
        print(f"  test pixels whose surface is in < {f:.0%} of the training views: {100 * p:.1f}% of pixels, "
              f"{100 * e:.1f}% of the squared error")
    for f, o in zip(cover["fractions"], cover["observed_psnr"]):
        print(f"  test PSNR on the other pixels (surface in >= {f:.0%} of the training views): {o:.2f}")
    (run / f"floater_probe_{ck['step']}.json").write_text(json.dumps({"rows": rows, "near": near, "coverage": cover},
                                                            indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
