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


__all__ = ["textured_sphere", "free_port", "drawn_fraction", "correlation", "check_scene_drawn", "gray_small"]
