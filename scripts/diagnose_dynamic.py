#!/usr/bin/env python
"""Where a `--method temporal` run on the bundled dynamic scene loses held-out PSNR (issue 15).

    python scripts/diagnose_dynamic.py RUN_DIR [IMAGE_DIR]

Splits the held-out camera's squared error into moving pixels (far from that camera's temporal
median, dilated by a pixel), static sky (the background colour) and static rest, the rest into
floor near / far from the camera, counts Gaussians outside the plaza (e.g. below the floor), and
re-renders without them. Diagnosis only: it uses what `scripts/make_dynamic_scene.py` builds (a
6x6 plaza on z = 0 in the generator's frame), which training never sees.
"""
import sys, math, torch
from splatlab.data import load_scene
from splatlab.train import checkpoint as ck
from splatlab.gaussians import Gaussians
from splatlab.methods import make_method
from splatlab.render import render
from splatlab.train.config import TrainConfig
from splatlab.metrics import psnr

run = sys.argv[1]
ckp = ck.load_checkpoint(ck.find_checkpoint(run))
cfg = TrainConfig.from_dict(ckp["config"])
scene = load_scene(cfg.scene, background=cfg.background)
g = Gaussians.from_fields(ckp["params"])
m = make_method(cfg.method, cfg.method_options); m.setup(scene, cfg)
test = scene.test
bg = torch.tensor(cfg.background, dtype=torch.float32)
n = len(test)
gts = torch.stack([test.load_image(i) for i in range(n)])
preds, depths, alphas = [], [], []
with torch.no_grad():
    for i in range(n):
        o = render(g, test.cameras[i], method=m, background=bg, backend="cpu", render_mode="RGB+ED")
        preds.append(o.images[0, ..., :3].clamp(0, 1)); depths.append(o.images[0, ..., 3]); alphas.append(o.alphas[0, ..., 0])
preds, depths, alphas = torch.stack(preds), torch.stack(depths), torch.stack(alphas)
err = ((preds - gts) ** 2).mean(-1)  # T,H,W
med = gts.median(0).values
moving = (gts - med).abs().max(-1).values > 0.06
# dilate moving by 1 px
mv = torch.nn.functional.max_pool2d(moving.float()[:, None], 3, 1, 1)[:, 0] > 0
sky = ((gts - bg).abs().max(-1).values < 0.04) & ~mv
# analytic ground-plane distance for diagnosis (z=0 plane of the generator; not used in training)
cam = test.cameras[0]
c2w = cam.camtoworlds[0].double() if hasattr(cam, "camtoworlds") else torch.linalg.inv(cam.viewmats[0].double())
K = cam.Ks[0].double(); H = W = scene.width
v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
d_cam = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)
d_w = d_cam @ c2w[:3, :3].T
o_w = c2w[:3, 3]
Sinv = torch.linalg.inv(scene.transform.double())
o_o = Sinv[:3, :3] @ o_w + Sinv[:3, 3]
d_o = d_w @ Sinv[:3, :3].T
s = -o_o[2] / d_o[..., 2]  # ray param to hit z=0 (depth along camera z since d_cam z = 1)
hit = o_o + s[..., None] * d_o
onplaza = (s > 0) & (hit[..., 0].abs() < 3) & (hit[..., 1].abs() < 3)
print(f"camera centre {o_w.tolist()}")
floor = ~mv & ~sky
def to_orig(p):
    return (p.double() @ Sinv[:3, :3].T + Sinv[:3, 3]).float()
print("scene scale (orig units per scene unit)", float(Sinv[:3,:3].det())**(1/3))
tot = err.sum()
def rep(name, mask):
    mask = mask.expand_as(err)
    if mask.sum() == 0:
        print(f"{name:28s} empty"); return
    mse = err[mask].mean()
    print(f"{name:28s} frac px {mask.float().mean():.3f}  PSNR {-10*math.log10(mse):6.2f}  share of SE {err[mask].sum()/tot:.3f}")
print(f"{run}: held-out PSNR (mean over frames) {sum(psnr(preds[i], gts[i]) for i in range(n))/n:.2f}, all-pixel {-10*math.log10(err.mean()):.2f}")
rep("moving (dilated)", mv)
rep("static", ~mv)
rep("static sky", sky)
rep("static non-sky", floor)
sc = float(Sinv[:3,:3].det())**(1/3); near = onplaza & (s * sc < 4.0)
rep("static floor-plane near<4", floor & near)
rep("static floor-plane far>=4", floor & onplaza & (s * sc >= 4.0))
rep("static not on plaza plane", floor & ~onplaza)
# floaters: rendered depth much nearer than the plane depth where plane visible and static
fl = floor & onplaza & (depths < 0.7 * s.float()) & (alphas > 0.3)
rep("static, rendered depth<0.7*plane", fl)
rep("sky, alpha>0.2 (stuff in sky)", sky & (alphas > 0.2))
print(f"mean alpha: sky {alphas[sky.expand_as(alphas)].mean():.3f}; non-sky static {alphas[floor].mean():.3f}")
# floater ablation: drop Gaussians of each moment outside a box around the scene content, re-render
for name, keepf in [("inside plaza box", lambda p: (p[:, 0].abs() < 3.3) & (p[:, 1].abs() < 3.3) & (p[:, 2] > -0.3) & (p[:, 2] < 2.5)),
                    ("dist to held-out cam > 1.5", lambda p: (p - o_o.float()).norm(dim=1) > 1.5)]:
    ps, nd = [], 0
    for i in range(n):
        t = float(test.cameras.times[i])
        gi = m.gaussians_at(g, t)
        keep = keepf(to_orig(gi.means.detach()))
        nd += int((~keep).sum())
        gk = Gaussians.from_fields({k: v[keep] for k, v in gi.detached_fields().items()})
        with torch.no_grad():
            o = render(gk, test.cameras[i], background=bg, backend="cpu")
        ps.append(psnr(o.images[0].clamp(0, 1), gts[i]))
    print(f"ablate: keep only {name}: PSNR {sum(ps)/n:.2f} (dropped {nd/n:.0f} per frame)")
gi = m.gaussians_at(g, 1.0)
p = to_orig(gi.means.detach())
outside = ~((p[:, 0].abs() < 3.3) & (p[:, 1].abs() < 3.3) & (p[:, 2] > -0.3) & (p[:, 2] < 2.5))
print(f"total {len(g)}, active at t=1: {len(gi)}, outside box {int(outside.sum())}, below ground {int((p[:,2]< -0.3).sum())}")
tm = g.params["t_log_scale"].detach().exp().reshape(-1)
print("t_scale quantiles", torch.quantile(tm, torch.tensor([0.1, 0.5, 0.9])).tolist())
if len(sys.argv) > 2:
    from splatlab.train import outputs
    import os
    os.makedirs(sys.argv[2], exist_ok=True)
    for i in (0, 12):
        outputs.save_image(f"{sys.argv[2]}/f{i}.png", torch.cat([preds[i], gts[i], (preds[i]-gts[i]).abs()*3], dim=1).clamp(0,1))
