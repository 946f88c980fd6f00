"""How the first pictures of a scene frame it, before and after `splatlab.framing` (issue 11, item 5).

For each splat file (or run folder: its point_cloud.ply) prints, for the three pictures:
  * render: `splatlab render`'s orbit (8 views, 128x128): the worst view;
  * viser:  the initial camera of `splatlab view` in a 4:3 window (160x120);
  * static: the Spark page of `splatlab view --static` in headless Chromium (480x360), with --browser;
the bounding box of the rendered alpha (> 0.5) as a fraction of the frame (`span` = larger side,
`area`) and whether alpha > 0.05 touches the border (cut off, or floaters at the edge).
"before" is the framing the repository had until this change (median centre + 90 % radius of all
splat centres; the static page's own raw-bounds framing); "after" is `splatlab.framing`.

    python scripts/measure_framing.py runs/robot runs/stilllife runs/garden --browser
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

import splatlab  # noqa: F401  (thread settings before torch work)
from splatlab.cameras import Cameras, intrinsics_from_fov, orbit
from splatlab.framing import fit_camera, fit_orbit
from splatlab.render import render
from splatlab.view.render import look_at_camera
from splatlab.view.testing import frame_stats


def old_orbit(g, n: int, w: int, h: int, fov_deg: float = 50.0, el: float = 25.0):
    """`splatlab render`'s orbit before this change (render/cli.py auto_orbit)."""
    means = g.means.detach()
    center = means.median(dim=0).values
    radius = torch.quantile((means - center).norm(dim=1), 0.9).item()
    fov = math.radians(fov_deg)
    d = max(radius, 1e-3) / math.sin(fov / 2) * 1.1
    return orbit(n, d, el, tuple(center.tolist())), intrinsics_from_fov(fov, w, h)[None].expand(n, 3, 3)


def old_viser(g, fov_y: float = math.radians(50), aspect: float = 4 / 3, el: float = 25.0):
    """`splatlab view`'s initial (eye, target) before this change (view/render.py default_view)."""
    means = g.means.detach()
    center = means.median(dim=0).values
    radius = torch.quantile((means - center).norm(dim=1), 0.9).item()
    fov = min(fov_y, 2 * math.atan(math.tan(fov_y / 2) * aspect))
    d = max(radius, 1e-3) / math.sin(fov / 2) * 1.1
    e = math.radians(el)
    return center.numpy() + d * np.array([math.cos(e), 0.0, math.sin(e)]), center.numpy()


def alphas(g, viewmats, Ks, w: int, h: int) -> np.ndarray:
    with torch.no_grad():
        return render(g, Cameras(viewmats, Ks, w, h)).alphas[..., 0].numpy()


def worst(stats: list[dict]) -> dict:
    s = min(stats, key=lambda x: x["span"])
    return {"span": s["span"], "area": min(x["area"] for x in stats),
            "touches_border": sum(x["touches_border"] for x in stats)}


def fmt(s: dict, n: int = 1) -> str:
    cut = f"{s['touches_border']}/{n} cut" if n > 1 else ("cut" if s["touches_border"] else "in frame")
    return f"span {s['span']:.2f} area {s['area']:.2f} {cut}"


def static_stats(browser, path: str, fitted: bool) -> dict:
    from scipy import ndimage

    from splatlab.view.cli import static_server_for
    from splatlab.view.source import read_splat_file
    from splatlab.view.static_server import StaticViewerServer

    src = read_splat_file(path)
    srv = (static_server_for(src, path, "127.0.0.1", 0) if fitted else StaticViewerServer(path)).start()
    try:
        browser.goto(srv.url + "&ui=0&bg=ff00ff")
        state = browser.wait_for("['ready', 'error'].includes(document.body.dataset.state) && "
                                 "document.body.dataset.state", timeout=180)
        if state != "ready":
            raise RuntimeError(browser.evaluate("window.splatlab.error"))
        browser.wait_for("window.splatlab.frames > 5", timeout=120)
        shot = browser.screenshot().astype(np.float64)
    finally:
        srv.stop()
    cov = np.abs(shot - np.array([255.0, 0.0, 255.0])).max(-1) / 255.0
    labels, n = ndimage.label(cov > 0.15)
    if n:
        big = np.bincount(labels.ravel())[1:].argmax() + 1
        cov = np.where(labels == big, cov, 0.0)
    return frame_stats(cov, threshold=0.3, edge_threshold=0.15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="splat files, checkpoints (.pt) or run folders")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--browser", action="store_true", help="also measure the static page in headless Chromium")
    args = ap.parse_args()
    from splatlab.io import read_splats

    browser = None
    if args.browser:
        from splatlab.view.headless import HeadlessChromium

        browser = HeadlessChromium(480, 360).__enter__()
    try:
        for path in args.inputs:
            if os.path.isdir(path):
                path = os.path.join(path, "point_cloud.ply")
            if path.endswith(".pt"):  # a checkpoint of a run still training
                from pathlib import Path

                from splatlab.view.source import read_checkpoint

                g = read_checkpoint(Path(path))[0]
            else:
                g = read_splats(path)
            name = path
            w = h = 128
            vm, K = old_orbit(g, args.views, w, h)
            before = worst([frame_stats(a) for a in alphas(g, vm, K, w, h)])
            vm, K, box = fit_orbit(g, args.views, w, h)
            after = worst([frame_stats(a) for a in alphas(g, vm, K, w, h)])
            print(f"{name}: {len(g):,} Gaussians; box {np.round(box.lo, 2)} .. {np.round(box.hi, 2)} "
                  f"({box.kept:,} kept)", flush=True)
            print(f"  render orbit ({args.views} views, worst): before {fmt(before, args.views)} | "
                  f"after {fmt(after, args.views)}", flush=True)
            vw, vh = 160, 120
            eye, target = old_viser(g)
            cam = look_at_camera(eye, target, math.radians(50), vw / vh)
            before = frame_stats(alphas(g, cam.viewmat()[None], cam.K(vw, vh)[None], vw, vh)[0])
            fit = fit_camera(g)
            cam = look_at_camera(fit.eye, fit.target, fit.fov_y, vw / vh)
            after = frame_stats(alphas(g, cam.viewmat()[None], cam.K(vw, vh)[None], vw, vh)[0])
            print(f"  viser initial (4:3): before {fmt(before)} (distance {np.linalg.norm(eye - target):.2f}) | "
                  f"after {fmt(after)} (distance {fit.distance:.2f})", flush=True)
            if browser is not None and not path.endswith(".pt"):
                b, a = static_stats(browser, path, False), static_stats(browser, path, True)
                print(f"  static page (480x360, largest blob): before {fmt(b)} | after {fmt(a)}", flush=True)
    finally:
        if browser is not None:
            browser.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
