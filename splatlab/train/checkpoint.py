"""Checkpoints: parameters, optimizer and strategy state, RNG states and step, written atomically."""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from splatlab.checkpoint_file import CheckpointError, encode_checkpoint
from splatlab.checkpoint_file import load_checkpoint as load_checkpoint_file

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint", "find_checkpoint", "rng_states", "set_rng_states"]

CKPT_RE = re.compile(r"^step_(\d+)\.pt$")


def rng_states() -> dict[str, Any]:
    """RNG states as tensors and plain data (readable with `torch.load(weights_only=True)`)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """torch.save to a temp file next to `path`, then rename (never a half-written checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(encode_checkpoint(payload), tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint read without unpickling code (`CheckpointError`, one line, on any bad file)."""
    return load_checkpoint_file(path)


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
