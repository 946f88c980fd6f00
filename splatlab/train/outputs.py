"""The run folder: checkpoints/, renders/, plot.png, point_cloud.ply and, last of all, metrics.json.

`metrics.json` is written only when a run finishes, so a folder without it is an interrupted or
running training, never a complete one.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

METRICS = "metrics.json"


def default_run_dir(scene: str | os.PathLike, root: str | os.PathLike = "outputs") -> Path:
    name = Path(scene).resolve().name or "scene"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name / stamp
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{stamp}-{i}")
        i += 1
    return out


def create_run_dir(path: str | os.PathLike) -> Path:
    out = Path(path)
    if (out / METRICS).exists():
        raise FileExistsError(f"{out} already holds a finished run ({METRICS}); choose another --out")
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    return out


def is_complete(path: str | os.PathLike) -> bool:
    return (Path(path) / METRICS).is_file()


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return str(x)


def save_image(path: str | os.PathLike, img: torch.Tensor) -> None:
    arr = (img.detach().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG")
    os.replace(tmp, path)


def write_plot(path: str | os.PathLike, history: list[dict]) -> None:
    """Loss, training PSNR and Gaussian count against the iteration (matplotlib, Agg)."""
    if not history:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for ax, key, label in zip(axes, ("loss", "psnr", "n"), ("loss", "train PSNR (dB)", "# Gaussians")):
        ax.plot(steps, [h[key] for h in history], lw=0.8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[-1].set_xlabel("iteration")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
