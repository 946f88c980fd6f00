"""The checkpoint file format, shared by the trainer (`--resume`) and the viewer.

A checkpoint is read with `torch.load(weights_only=True)`: only tensors, numbers, strings and
plain containers are accepted, so a crafted `.pt` cannot run code when opened. Everything that
is not a tensor and not a plain number (the training config, the method) is stored as JSON text.
Any file that does not read as such a checkpoint raises `CheckpointError` with one line naming it.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 2  # 1: pickled config (weights_only=False), no longer read
JSON_KEYS = ("config", "method")


class CheckpointError(ValueError):
    """A file is not a readable splatlab checkpoint; the message is one line naming the file."""

    def __init__(self, path: os.PathLike | str, problem: str) -> None:
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {' '.join(str(problem).split())}")


def encode_checkpoint(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its config and method as JSON text (what `torch.save` writes)."""
    out = {k: v for k, v in payload.items() if k not in JSON_KEYS}
    for key in JSON_KEYS:
        if key in payload:
            out[f"{key}_json"] = json.dumps(payload[key])
    out["version"] = FORMAT_VERSION
    return out


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint without unpickling code; config and method come back as dicts."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise CheckpointError(path, f"cannot read: {err.strerror or err}") from None
    if path.is_dir():
        raise CheckpointError(path, "is a directory, not a checkpoint file")
    if size == 0:
        raise CheckpointError(path, "empty file (0 bytes), not a checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise CheckpointError(path, "refused: the file holds pickled Python objects (a checkpoint from an "
                                        "older splatlab, or not a splatlab checkpoint); only tensors and "
                                        "plain data are loaded") from None
        raise CheckpointError(path, "not a checkpoint (corrupt or foreign file)") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError) as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(path, f"not a checkpoint (corrupt, truncated or foreign file: "
                                    f"{first[0][:120] if first else type(err).__name__})") from None
    if not isinstance(data, dict) or "params" not in data or not isinstance(data.get("params"), dict):
        raise CheckpointError(path, "not a splatlab checkpoint (no Gaussian parameters)")
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(path, f"checkpoint format version {data.get('version')!r} is not readable "
                                    f"(expected {FORMAT_VERSION})")
    if not all(isinstance(v, torch.Tensor) for v in data["params"].values()):
        raise CheckpointError(path, "corrupt checkpoint: parameters are not all tensors")
    for key in JSON_KEYS:
        text = data.pop(f"{key}_json", None)
        if text is None:
            data[key] = None
            continue
        try:
            data[key] = json.loads(text) if isinstance(text, str) else None
        except json.JSONDecodeError:
            raise CheckpointError(path, f"corrupt checkpoint: its {key} is not valid JSON") from None
    if data.get("config") is not None and not isinstance(data["config"], dict):
        raise CheckpointError(path, "corrupt checkpoint: its config is not a JSON object")
    return data
