"""Paged training of a Temporal Gaussian Hierarchy: the clip is trained window by window (one
finest-level segment at a time); only the segments active in the window (one per level plus the
global one) are paged in from the `SegmentStore` with their Adam moments, trained on that window's
(camera, frame) views, then paged out (rows re-assigned by their new temporal support).

Working memory is therefore the active set, independent of the clip's length; `flat=True` is the
baseline without the hierarchy (every segment stays in memory and is optimised every window).

    stats = train_paged(scene, "out/store", levels=4, steps_per_window=100)

Kept simple on purpose (documented limits): a fixed Gaussian budget per window (no densification
in paged mode), colour only (SH degree 0), and one Adam step counter shared by all rows.
"""
from __future__ import annotations

import math
import resource
import time
from pathlib import Path

import torch
from torch import Tensor

from splatlab.data import SceneData
from splatlab.gaussians import Gaussians, rgb_to_sh0
from splatlab.losses import photometric_loss
from splatlab.methods.temporal import TemporalHierarchy, support_radius
from splatlab.methods.temporal_store import SegmentStore
from splatlab.metrics import psnr
from splatlab.render import render

from .config import TrainConfig
from .init import random_init_points
from .trainer import base_lrs, gaussian_adam


def _fresh_rows(scene: SceneData, n: int, tau: float, sigma: float, gen: torch.Generator) -> dict[str, Tensor]:
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    return {"means": random_init_points(scene, n, gen),
            "quats": quats,
            "scales": torch.full((n, 3), math.log(0.02 * scene.scene_scale)),
            "opacities": torch.full((n,), math.log(0.1 / 0.9)),
            "sh0": rgb_to_sh0(torch.full((n, 1, 3), 0.5)),
            "t_mean": torch.full((n, 1), tau),
            "t_log_scale": torch.full((n, 1), math.log(sigma)),
            "velocity": torch.zeros(n, 3)}


def working_bytes(tensors: dict[str, Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def train_paged(scene: SceneData, store_dir: str | Path, *, levels: int = 4, steps_per_window: int = 100,
                n_global: int = 3000, n_per_window: int = 1500, seed: int = 0, flat: bool = False,
                background: Tensor | None = None, progress: bool = True) -> dict:
    """Train the whole clip window by window; returns timing and memory statistics."""
    cfg = TrainConfig()
    method = TemporalHierarchy(TemporalHierarchy.Config(levels=levels))
    method.setup(scene, cfg)
    duration = method.config.duration
    store = SegmentStore.create(store_dir, method)
    lrs = {**base_lrs(cfg, scene.scene_scale), **method.extra_lrs(cfg)}
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    bg = scene.background if background is None else background
    n_windows = 2 ** (levels - 1)
    window = 1.0 / n_windows
    r = support_radius(method.config.opacity_threshold)
    times = scene.train.cameras.times
    peak_bytes, step, t0 = 0, 0, time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_windows * steps_per_window, desc="paged" if not flat else "flat")
    for w in range(n_windows):
        tau0, tau1 = w * window, (w + 1) * window
        keys = store.active_keys(0.5 * (tau0 + tau1) * duration)
        if flat:
            keys = sorted({(s["level"], s["segment"]) for s in store.index["segments"].values()} | set(keys))
        tensors = store.load_tensors(keys)
        new = _fresh_rows(scene, n_per_window, 0.5 * (tau0 + tau1), 0.5 * window / r * 0.95, gen)
        if w == 0:
            glob = _fresh_rows(scene, n_global, 0.5, 0.5, gen)
            new = {k: torch.cat([glob[k], new[k]]) for k in new}
        for k, v in new.items():
            zeros = torch.zeros_like(v)
            tensors[k] = torch.cat([tensors[k], v]) if k in tensors else v
            for mom in ("exp_avg", "exp_avg_sq"):
                key = f"{k}.{mom}"
                tensors[key] = torch.cat([tensors[key], zeros]) if key in tensors else zeros
        g = Gaussians.from_fields({k: v.clone() for k, v in tensors.items() if "." not in k}, method.spec())
        params = dict(g.params.items())
        opt = gaussian_adam([{"params": [p], "lr": lrs[k], "name": k} for k, p in params.items()])
        for k, p in params.items():
            moments = {m: tensors.get(f"{k}.{m}", torch.zeros_like(p)).clone() for m in ("exp_avg", "exp_avg_sq")}
            opt.state[p] = {"step": torch.tensor(float(step)), **moments}
        peak_bytes = max(peak_bytes, working_bytes(tensors) + 2 * working_bytes(params))
        in_window = torch.nonzero((times >= tau0 * duration - 1e-6) & (times < tau1 * duration - 1e-6)).reshape(-1)
        for s in range(steps_per_window):
            i = int(in_window[torch.randint(len(in_window), (1,), generator=gen)])
            cams = scene.train.cameras[i]
            out = render(g, cams, method=method, training=True, step=step, sh_degree=0, background=bg,
                         backend="cpu")
            loss = sum(photometric_loss(out.images, scene.train.load_image(i)[None], cfg.ssim_lambda).values())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                bar.update(1)
        back = {}
        for k, p in params.items():
            if p.numel() == 0:  # no SH bands beyond degree 0
                continue
            st = opt.state[p]
            back[k], back[f"{k}.exp_avg"], back[f"{k}.exp_avg_sq"] = p.detach(), st["exp_avg"], st["exp_avg_sq"]
        store.page_out(back, keys)
        del g, params, opt, tensors, back
    if bar is not None:
        bar.close()
    train_time = time.perf_counter() - t0
    return {"windows": n_windows, "steps": step, "train_time_s": train_time,
            "peak_working_bytes": peak_bytes, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "stored_gaussians": store.total_count(), "storage_bytes": store.nbytes()}


@torch.no_grad()
def evaluate_store(store_dir: str | Path, views, background: Tensor, max_views: int = 0) -> dict:
    """Held-out PSNR and per-frame active counts / render time, loading only the active segments."""
    store = SegmentStore(store_dir)
    n = len(views) if max_views <= 0 else min(max_views, len(views))
    pick = torch.linspace(0, len(views) - 1, n).round().long().tolist()
    psnrs, counts, times = [], [], []
    cache_key, g = None, None
    for i in pick:
        t = float(views.cameras.times[i])
        key = tuple(store.active_keys(t))
        if key != cache_key:
            g, cache_key = store.load_active(t), key
        t0 = time.perf_counter()
        img = render(g, views.cameras[i], background=background, backend="cpu").images[0]
        times.append(time.perf_counter() - t0)
        counts.append(len(g))
        psnrs.append(psnr(img, views.load_image(i)))
    return {"psnr": sum(psnrs) / len(psnrs), "active_gaussians": sum(counts) / len(counts),
            "render_ms": 1000 * sum(times) / len(times), "views": n}


__all__ = ["train_paged", "evaluate_store", "working_bytes"]
