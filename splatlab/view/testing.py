"""Helpers for the viewer's browser tests: a deterministic test scene and screenshot checks.

Kept in the package (not in tests/) so every `tests/test_view_*.py` file and ad-hoc scripts share
one definition of "the scene is drawn".
"""
from __future__ import annotations

import socket

import numpy as np
import torch

from ..gaussians import Gaussians


def textured_sphere(n: int = 1500, seed: int = 0, radius: float = 1.0, scale: float = 0.08,
                    opacity: float = 0.95, sh_degree: int = 1) -> Gaussians:
    """Gaussians on a sphere with a smooth, asymmetric colour pattern (deterministic)."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, generator=gen)
    v = v / v.norm(dim=1, keepdim=True)
    col = 0.5 + 0.45 * torch.stack([torch.sin(4 * v[:, 0]), torch.cos(5 * v[:, 1]), torch.sin(3 * v[:, 2] + 1)], 1)
    return Gaussians.from_points(radius * v, col, torch.full((n,), scale), opacity=opacity, sh_degree=sh_degree)


def tall_object_with_strays(seed: int = 0, strays: bool = True) -> tuple[Gaussians, int]:
    """(Gaussians, n_object): a robot-like object (box body 1.2 tall, a head on top, a thin antenna
    reaching z = 2.2, the part a quantile cut would lose) followed by strays a trained scene has: 8
    opaque splats 15-30 units away and 200 faint ones (opacity 0.05) on a sphere of radius 5.
    The first `n_object` Gaussians are the object; framing checks render those alone."""
    gen = torch.Generator().manual_seed(seed)
    body = torch.rand(600, 3, generator=gen) * torch.tensor([0.8, 0.6, 1.2]) - torch.tensor([0.4, 0.3, 0.0])
    v = torch.randn(300, 3, generator=gen)
    head = 0.3 * v / v.norm(dim=1, keepdim=True) + torch.tensor([0.0, 0.0, 1.5])
    t = torch.linspace(1.8, 2.2, 40)
    antenna = torch.stack([torch.full_like(t, 0.1), torch.zeros_like(t), t], 1)
    obj = torch.cat([body, head, antenna])
    parts = [(obj, 0.9, 0.04)]
    if strays:
        d = torch.randn(8, 3, generator=gen)
        far = d / d.norm(dim=1, keepdim=True) * (15 + 15 * torch.rand(8, 1, generator=gen))
        h = torch.randn(200, 3, generator=gen)
        parts += [(far, 0.9, 0.2), (5 * h / h.norm(dim=1, keepdim=True), 0.05, 0.3)]
    gs = [Gaussians.from_points(p, torch.rand(len(p), 3, generator=gen), torch.full((len(p),), sc), opacity=op,
                                sh_degree=0) for p, op, sc in parts]
    return Gaussians.concat(gs), len(obj)


def frame_stats(alpha: np.ndarray, threshold: float = 0.5, edge_threshold: float = 0.05) -> dict:
    """How an object sits in a frame, from its (H, W) alpha: bounding box of alpha > `threshold` as
    fractions of the frame (`span_x`, `span_y`, `span` = the larger, `area`), and `touches_border`:
    some pixel of the outermost rows / columns has alpha > `edge_threshold` (the object is cut off)."""
    a = np.asarray(alpha, dtype=np.float64)
    h, w = a.shape
    edge = a > edge_threshold
    touches = bool(edge[0].any() or edge[-1].any() or edge[:, 0].any() or edge[:, -1].any())
    ys, xs = np.nonzero(a > threshold)
    if len(xs) == 0:
        return {"span_x": 0.0, "span_y": 0.0, "span": 0.0, "area": 0.0, "touches_border": touches}
    sx, sy = (xs.max() - xs.min() + 1) / w, (ys.max() - ys.min() + 1) / h
    return {"span_x": float(sx), "span_y": float(sy), "span": float(max(sx, sy)), "area": float(sx * sy),
            "touches_border": touches}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gray_small(img: np.ndarray, size=(64, 48)) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).convert("L").resize(size, Image.BILINEAR),
                      dtype=np.float64)


def drawn_fraction(img: np.ndarray, background, tol: float = 30.0) -> float:
    """Fraction of pixels farther than `tol` (0..255, max over channels) from the background colour."""
    bg = np.asarray(background, dtype=np.float64).reshape(1, 1, 3)
    if bg.max() <= 1.0:
        bg = bg * 255.0
    return float((np.abs(img.astype(np.float64) - bg).max(axis=-1) > tol).mean())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    ga, gb = gray_small(a).ravel(), gray_small(b).ravel()
    if ga.std() < 1e-6 or gb.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(ga, gb)[0, 1])


def check_scene_drawn(shot: np.ndarray, reference: np.ndarray, background, *, min_drawn: float = 0.1,
                      min_corr: float = 0.8, max_mean_diff: float = 25.0) -> dict:
    """Raise AssertionError unless `shot` shows the scene: enough non-background pixels, and the
    same picture as splatlab's own render `reference` (downsampled grayscale correlation, mean colour)."""
    assert shot.shape == reference.shape, f"screenshot {shot.shape} vs reference {reference.shape}"
    stats = {"drawn": drawn_fraction(shot, background), "ref_drawn": drawn_fraction(reference, background),
             "corr": correlation(shot, reference),
             "mean_diff": float(np.abs(shot.reshape(-1, 3).mean(0) - reference.reshape(-1, 3).mean(0)).max())}
    assert stats["drawn"] >= min_drawn, f"scene not drawn: only {stats['drawn']:.1%} non-background pixels {stats}"
    assert stats["corr"] >= min_corr, f"screenshot does not match splatlab's render: {stats}"
    assert stats["mean_diff"] <= max_mean_diff, f"mean colour differs from splatlab's render: {stats}"
    return stats


__all__ = ["textured_sphere", "tall_object_with_strays", "frame_stats", "free_port", "drawn_fraction", "correlation", "check_scene_drawn", "gray_small"]
