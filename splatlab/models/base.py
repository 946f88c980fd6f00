"""The contract for learned feed-forward networks (kept apart from per-scene training methods).

A model is an `nn.Module` with a typed config; its output is a plain `Gaussians` (so io, compress
and the viewer work unchanged). Weights live in a folder:

    config.json        {"model": name, "format": 1, "config": {...}}
    model.safetensors  the state dict
    manifest.json      {"files": {"config.json": sha256, "model.safetensors": sha256}}
    README.md          the model card (data, steps, wall time, metrics, licence)

`from_pretrained()` finds that folder inside the installed package (`splatlab/models/<name>/weights/`)
or at an explicit path, checks every file against the manifest and never downloads anything.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


class WeightsError(ValueError):
    """Weights that cannot be used: missing, corrupt, wrong sha256 or for another model/config.
    The message is one line naming the folder or file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(ValueError):
    """Input a model cannot use (unreadable photo, no object in it, ...); one line naming the file."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class ModelConfig:
    """Base of every model's hyperparameters (JSON values only)."""

    def validate(self) -> None:
        """Raise ValueError on inconsistent values."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save through a temp file + rename, so an interrupted training script never leaves a
    truncated checkpoint (the training scripts of every model resume from these)."""
    from ..io._common import atomic_write

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        torch.save(obj, fh)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _config_from_dict(config_cls: type, values: dict[str, Any], where: str):
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise WeightsError(f"{where}: config has unknown keys {unknown} for {config_cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    converted = {}
    for k, v in values.items():
        default = fields[k].default
        if isinstance(default, tuple) and isinstance(v, list):  # JSON has no tuples
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        converted[k] = v
    try:
        config = config_cls(**converted)
        config.validate()
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{where}: bad config ({exc})") from None
    return config


class FeedForwardModel(nn.Module):
    """Base class: subclasses set `name` and `Config` and implement `forward` and `predict`."""

    name: ClassVar[str] = "base"
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else self.Config()
        self.config.validate()

    # -- what the shared model tests need -----------------------------------------------------------
    @classmethod
    def tiny_config(cls) -> ModelConfig:
        """A config small enough for a CPU unit test (seconds), with every code path still used."""
        return cls.Config()

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        """Keyword inputs of `forward` for a smoke test (random but valid)."""
        raise NotImplementedError

    def to_gaussians(self, output: Any, index: int = 0):
        """Sample `index` of a `forward` output as a plain `Gaussians` (what io/view/compress take)."""
        raise NotImplementedError

    # -- what `splatlab predict <name> INPUT` calls ------------------------------------------------------
    @classmethod
    def add_predict_arguments(cls, parser) -> None:
        """Model-specific options of `splatlab predict` (argparse)."""

    def predict_path(self, input_path: str, options: dict[str, Any] | None = None):
        """Read `input_path` (a photo, a splat file, ...) and return a plain `Gaussians`.
        Bad input raises `InputError` with a one-line message naming the file."""
        raise NotImplementedError(f"model {self.name!r} has no file-level predict")

    # -- persistence -----------------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {"model": self.name, "format": FORMAT_VERSION,
                "config": json.loads(json.dumps(dataclasses.asdict(self.config)))}

    def save_pretrained(self, directory: str | os.PathLike, card: str | None = None) -> Path:
        """Write config, weights and manifest (and `card` as README.md) into `directory`, atomically:
        everything goes to a temp folder that is renamed over the old one at the end."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config_dict(), indent=2, sort_keys=True) + "\n")
            state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"model": self.name})
            if card is not None:
                (tmp / "README.md").write_text(card)
            elif (directory / "README.md").is_file():
                (tmp / "README.md").write_text((directory / "README.md").read_text())
            manifest = {"files": {f: sha256_file(tmp / f) for f in (CONFIG_FILE, WEIGHTS_FILE)}}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            if directory.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
                os.replace(directory, old / directory.name)
                os.replace(tmp, directory)
                import shutil
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        finally:
            if tmp.exists():
                import shutil
                shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @classmethod
    def shipped_weights(cls) -> Path:
        """Where the package ships this model's weights (may not exist): `weights/` beside the
        module that defines the model, i.e. `splatlab/models/<name>/weights/` for built-ins and
        the plug-in's own package for entry-point models."""
        module = sys.modules[cls.__module__]
        return Path(module.__file__).resolve().parent / "weights"

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu"):
        """Load verified weights: the shipped ones, or those in the folder `path`. Never downloads."""
        folder = Path(path) if path is not None else cls.shipped_weights()
        if not folder.is_dir():
            if path is None:
                raise WeightsError(f"no shipped weights for model {cls.name!r} at {folder} "
                                   f"(train them with scripts/train_{cls.name}.py, or pass a weights folder)")
            raise WeightsError(f"{folder}: not a weights folder")
        verify_manifest(folder)
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{folder / CONFIG_FILE}: unreadable ({exc})") from None
        if not isinstance(meta, dict) or meta.get("model") != cls.name:
            raise WeightsError(f"{folder}: weights are for model {meta.get('model') if isinstance(meta, dict) else None!r}, "
                               f"not {cls.name!r}")
        if meta.get("format") != FORMAT_VERSION:
            raise WeightsError(f"{folder}: weights format {meta.get('format')!r} (this splatlab reads {FORMAT_VERSION})")
        config = _config_from_dict(cls.Config, meta.get("config") or {}, str(folder / CONFIG_FILE))
        model = cls(config)
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{folder / WEIGHTS_FILE}: unreadable ({' '.join(str(exc).split())})") from None
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            parts = []
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
                if keys:
                    parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
            raise WeightsError(f"{folder / WEIGHTS_FILE}: does not fit the config: " + "; ".join(parts))
        model.load_state_dict(state, strict=True)
        return model.to(device).eval()


def verify_manifest(folder: str | os.PathLike) -> None:
    """Every file named in `manifest.json` exists and has its sha256 (WeightsError otherwise)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("no files listed")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{folder / MANIFEST_FILE}: missing or unreadable ({exc})") from None
    for required in (CONFIG_FILE, WEIGHTS_FILE):
        if required not in files:
            raise WeightsError(f"{folder / MANIFEST_FILE}: does not list {required}")
    for name, digest in files.items():
        path = folder / name
        if "/" in name or "\\" in name or name.startswith("."):
            raise WeightsError(f"{folder / MANIFEST_FILE}: bad file name {name!r}")
        if not path.is_file():
            raise WeightsError(f"{path}: missing (listed in the manifest)")
        actual = sha256_file(path)
        if actual != digest:
            raise WeightsError(f"{path}: sha256 mismatch (expected {str(digest)[:12]}..., got {actual[:12]}...); "
                               "the weights are corrupt or not the ones shipped")
