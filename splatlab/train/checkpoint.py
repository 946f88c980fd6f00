"""Checkpoints: parameters, optimizer and strategy state, RNG states and step, written atomically."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_RE = re.compile(r"^step_(\d+)\.pt$")


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """torch.save to a temp file next to `path`, then rename (never a half-written checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file itself, or the latest `checkpoints/step_*.pt` of a run folder."""
    p = Path(path)
    if p.is_file():
        return p
    for folder in (p / "checkpoints", p):
        if folder.is_dir():
            found = sorted((int(m.group(1)), f) for f in folder.iterdir() if (m := CKPT_RE.match(f.name)))
            if found:
                return found[-1][1]
    raise FileNotFoundError(f"{p}: no checkpoint found (expected a .pt file or a run folder with checkpoints/)")


def run_dir_of(ckpt: Path) -> Path:
    ckpt = Path(ckpt)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
