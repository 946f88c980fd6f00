"""The temporal splat file: a folder with one file per (level, segment) and an `index.json`.

    store = SegmentStore.create(folder, method)      # empty hierarchy for a `temporal` method
    store.write_all(gaussians)                        # split a model's rows by segment
    g = store.load_active(t)                          # only the segments active at t seconds
    store.page_out(g, active)                         # write back, re-assigning moved rows

Each segment file (safetensors) holds the fields of its rows and, when training, their Adam moments
(`<field>.exp_avg`, `<field>.exp_avg_sq`). Only the active segments are ever read at once, so
rendering or training a moment needs memory for one segment per level, however long the clip is.
Files are written to a temp name and renamed; the index is rewritten the same way.

Colour for every Gaussian, higher SH bands only where they are not zero: a segment stores `shN`
for its rows with a non-zero one only (`shN.rows`), cut after the last non-zero band (`shN.bases`
keeps the full count); reading restores the dense (N, K, 3) tensor exactly. `write_all(g,
sh_min=x)` first zeroes the bands of rows whose view-dependent colour can change by less than x
in every direction (`sh_rest_bound`), so they store colour only ("full SH only where it pays").
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from splatlab.gaussians import Gaussians

from .temporal import TemporalHierarchy, active_segments, assign_segments

INDEX = "index.json"


def segment_name(level: int, segment: int) -> str:
    return f"L{level:02d}_S{segment:06d}.safetensors"


def sh_rest_bound(shN: Tensor) -> Tensor:
    """(N,) the largest change any colour channel gets from the SH bands above 0, over all view
    directions: per band l, |Σ_m c_lm Y_lm(d)| <= ‖c_l‖ √((2l+1)/4π), since Σ_m Y_lm(d)² = (2l+1)/4π
    for every d (addition theorem of the real orthonormal SH the renderer uses); summed over bands."""
    n, k = shN.shape[0], shN.shape[1]
    total = shN.new_zeros(n, shN.shape[2])
    l = 1
    while (l + 1) ** 2 - 1 <= k:
        band = shN[:, l * l - 1:(l + 1) ** 2 - 1]  # band l: bases l²..(l+1)²-1, shN starts at basis 1
        total = total + band.norm(dim=1) * math.sqrt((2 * l + 1) / (4 * math.pi))
        l += 1
    return total.amax(dim=-1) if total.shape[1] else shN.new_zeros(n)


def _pack_sh(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """`shN` of the rows with a non-zero band only, cut after its last non-zero band (lossless)."""
    sh = tensors.get("shN")
    if sh is None or sh.ndim != 3 or sh.shape[1] == 0:
        return tensors
    nonzero = sh != 0
    rows = torch.nonzero(nonzero.any(dim=2).any(dim=1)).reshape(-1)
    used = torch.nonzero(nonzero.any(dim=2).any(dim=0)).reshape(-1)
    bases = int(used.max()) + 1 if len(used) else 0
    out = dict(tensors)
    out["shN"] = sh[rows, :bases]
    out["shN.rows"] = rows.to(torch.int32)
    out["shN.bases"] = torch.tensor([sh.shape[1]], dtype=torch.int32)
    return out


def _unpack_sh(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    if "shN.rows" not in tensors:
        return tensors
    out = dict(tensors)
    rows, bases, packed = out.pop("shN.rows").long(), int(out.pop("shN.bases")[0]), out["shN"]
    full = packed.new_zeros((out["means"].shape[0], bases, 3))
    full[rows, : packed.shape[1]] = packed
    out["shN"] = full
    return out


class SegmentStore:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        path = self.folder / INDEX
        if not path.is_file():
            raise ValueError(f"{path}: no temporal splat index")
        try:
            self.index = json.loads(path.read_text())
            self.method = TemporalHierarchy(TemporalHierarchy.Config(**self.index["method"]["options"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: malformed temporal splat index ({' '.join(str(exc).split())})") from None

    @classmethod
    def create(cls, folder: str | os.PathLike, method: TemporalHierarchy) -> "SegmentStore":
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        index = {"format": "splatlab-temporal/1", "method": method.spec().to_dict(), "segments": {}}
        _atomic_json(folder / INDEX, index)
        return cls(folder)

    # -- io ------------------------------------------------------------------------------------
    def _save_index(self) -> None:
        _atomic_json(self.folder / INDEX, self.index)

    def read_segment(self, level: int, segment: int) -> dict[str, Tensor]:
        name = segment_name(level, segment)
        if name not in self.index["segments"]:
            return {}
        return _unpack_sh(load_file(str(self.folder / name)))

    def write_segment(self, level: int, segment: int, tensors: dict[str, Tensor]) -> None:
        name = segment_name(level, segment)
        n = int(tensors["means"].shape[0]) if tensors else 0
        if n == 0:
            (self.folder / name).unlink(missing_ok=True)
            self.index["segments"].pop(name, None)
            return
        tmp = self.folder / f".{name}.tmp"
        save_file({k: v.detach().contiguous() for k, v in _pack_sh(tensors).items()}, str(tmp))
        os.replace(tmp, self.folder / name)
        self.index["segments"][name] = {"level": level, "segment": segment, "count": n}

    # -- whole models ------------------------------------------------------------------------------
    def split(self, tensors: dict[str, Tensor]) -> dict[tuple[int, int], dict[str, Tensor]]:
        """Rows grouped by their (level, segment)."""
        cfg = self.method.config
        level, seg = assign_segments(tensors["t_mean"], torch.exp(tensors["t_log_scale"]), cfg.levels,
                                     cfg.opacity_threshold)
        out = {}
        for key in sorted(set(zip(level.tolist(), seg.tolist()))):
            rows = torch.nonzero((level == key[0]) & (seg == key[1])).reshape(-1)
            out[key] = {k: v[rows] for k, v in tensors.items()}
        return out

    def write_all(self, gaussians: Gaussians, sh_min: float = 0.0) -> None:
        """Split a model's rows by segment. `sh_min` > 0: rows whose SH bands above 0 change no colour
        channel by `sh_min` or more in any direction (`sh_rest_bound`) keep their colour only."""
        fields = gaussians.detached_fields()
        if sh_min > 0 and fields.get("shN") is not None and fields["shN"].shape[1] > 0:
            keep = sh_rest_bound(fields["shN"]) >= sh_min
            fields["shN"] = fields["shN"] * keep[:, None, None].to(fields["shN"])
        for key, part in self.split(fields).items():
            self.write_segment(*key, part)
        self._save_index()

    def active_keys(self, t: float) -> list[tuple[int, int]]:
        cfg = self.method.config
        return active_segments(float(t) / cfg.duration, cfg.levels)

    def load_tensors(self, keys: list[tuple[int, int]]) -> dict[str, Tensor]:
        parts = [p for p in (self.read_segment(*k) for k in keys) if p]
        if not parts:
            return {}
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def load_active(self, t: float) -> Gaussians:
        """The Gaussians of the segments active at t seconds (fields only), tagged with the method."""
        tensors = self.load_tensors(self.active_keys(t))
        g = Gaussians.from_fields({k: v for k, v in tensors.items() if "." not in k})
        g.method = self.method.spec()
        return g

    def page_out(self, tensors: dict[str, Tensor], active: list[tuple[int, int]]) -> None:
        """Write the working rows back: active segments are replaced, rows whose (re-)assignment
        moved them to an inactive segment are appended to that segment's file."""
        parts = self.split(tensors)
        for key in active:
            self.write_segment(*key, parts.pop(key, {}))
        for key, part in parts.items():
            old = self.read_segment(*key)
            if old:
                part = {k: torch.cat([old[k], part[k]]) for k in part if k in old}
            self.write_segment(*key, part)
        self._save_index()

    def total_count(self) -> int:
        return sum(s["count"] for s in self.index["segments"].values())

    def nbytes(self) -> int:
        return sum((self.folder / n).stat().st_size for n in self.index["segments"])


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


__all__ = ["SegmentStore", "segment_name"]
