"""Reader for the multi-view object dataset made by scripts/make_objects.py.

    ds = ObjectDataset("/work/data/objects", "train")
    views = ds[0]                       # ObjectViews
    views.rgba.shape                    # (V, 128, 128, 4) float32 in [0, 1], straight alpha
    views.cameras                       # splatlab Cameras (OpenCV, world-to-camera)
    low = views.meta["elevation_deg"] < 45   # in-distribution (low) vs high-elevation views

Layout (this docstring is the format's reference): ``index.json`` lists finished objects
``{"id", "split", "source", "n_views"}``; ``objects/<id>.npz`` holds ``rgba`` uint8 (V,H,W,4),
``depth`` float16 (V,H,W) camera z (0 = background), ``viewmats`` float32 (V,4,4), ``Ks`` float32
(V,3,3), ``elevation_deg`` and ``azimuth_deg`` float32 (V,).  The generator rewrites the index
atomically while it runs; call :meth:`ObjectDataset.refresh` to see objects added since.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from splatlab.cameras import Cameras
from splatlab.data.scene import DatasetError

SPLITS = ("train", "val", "test", "ood")
REQUIRED = {
    "rgba": (np.uint8, 4),
    "depth": (np.float16, 3),
    "viewmats": (np.float32, 3),
    "Ks": (np.float32, 3),
    "elevation_deg": (np.float32, 1),
    "azimuth_deg": (np.float32, 1),
}


class ObjectDataError(DatasetError):
    """A missing or malformed object dataset file (the message names the file)."""


@dataclass
class ObjectViews:
    """All views of one object."""

    rgba: Tensor  # (V, H, W, 4) float32 in [0, 1], straight alpha, background alpha 0
    depth: Tensor  # (V, H, W) float32 camera-z depth, 0 on the background
    cameras: Cameras  # V cameras, image_ids 0..V-1
    meta: dict = field(default_factory=dict)  # id, split, source, elevation_deg, azimuth_deg (numpy)

    def rgb_on(self, background=(1.0, 1.0, 1.0)) -> Tensor:
        """(V, H, W, 3) colour composited over a constant background (white by default)."""
        a = self.rgba[..., 3:]
        return self.rgba[..., :3] * a + torch.tensor(background, dtype=self.rgba.dtype) * (1 - a)


def load_object_npz(path) -> dict:
    """The arrays of one object file, checked; ObjectDataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ObjectDataError(f"{path}: object file missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in REQUIRED if k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ObjectDataError(f"{path}: not a readable .npz ({type(e).__name__}: {e})") from None
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise ObjectDataError(f"{path}: missing arrays {', '.join(missing)}")
    v = arrays["rgba"].shape[0]
    for key, (dtype, ndim) in REQUIRED.items():
        a = arrays[key]
        if a.dtype != dtype or a.ndim != ndim or a.shape[0] != v:
            raise ObjectDataError(f"{path}: {key} is {a.dtype}{list(a.shape)}, expected {np.dtype(dtype).name} "
                                  f"with {ndim} dims and {v} views")
    h, w = arrays["rgba"].shape[1:3]
    if arrays["rgba"].shape[3] != 4 or arrays["depth"].shape[1:] != (h, w) or arrays["viewmats"].shape[1:] != (4, 4) \
            or arrays["Ks"].shape[1:] != (3, 3):
        raise ObjectDataError(f"{path}: inconsistent shapes rgba {list(arrays['rgba'].shape)}, depth "
                              f"{list(arrays['depth'].shape)}, viewmats {list(arrays['viewmats'].shape)}, Ks {list(arrays['Ks'].shape)}")
    return arrays


class ObjectDataset:
    """The objects of one split (``None``: all splits) listed in ``root/index.json``."""

    def __init__(self, root, split: str | None = "train"):
        if split is not None and split not in SPLITS:
            raise ObjectDataError(f"{root}: unknown split {split!r} (expected one of {', '.join(SPLITS)})")
        self.root = Path(root)
        self.split = split
        self.entries: list[dict] = []
        self.refresh()

    def refresh(self) -> "ObjectDataset":
        """Re-read index.json (the generator may have added objects)."""
        p = self.root / "index.json"
        if not p.is_file():
            raise ObjectDataError(f"{p}: no object index (generate with scripts/make_objects.py --out {self.root})")
        try:
            entries = json.loads(p.read_text())
            if not isinstance(entries, list) or not all(isinstance(e, dict) and {"id", "split"} <= e.keys() for e in entries):
                raise ValueError("expected a list of {id, split, source, n_views} entries")
        except ValueError as e:
            raise ObjectDataError(f"{p}: invalid object index ({e})") from None
        self.entries = [e for e in entries if self.split is None or e["split"] == self.split]
        return self

    @property
    def ids(self) -> list[str]:
        return [e["id"] for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def path(self, index: int) -> Path:
        return self.root / "objects" / f"{self.entries[index]['id']}.npz"

    def __getitem__(self, index: int) -> ObjectViews:
        entry = self.entries[index]
        a = load_object_npz(self.path(index))
        h, w = a["rgba"].shape[1:3]
        cameras = Cameras(torch.from_numpy(a["viewmats"]), torch.from_numpy(a["Ks"]), w, h).with_ids()
        meta = dict(entry, elevation_deg=a["elevation_deg"], azimuth_deg=a["azimuth_deg"])
        return ObjectViews(torch.from_numpy(a["rgba"]).float() / 255.0, torch.from_numpy(a["depth"].astype(np.float32)),
                           cameras, meta)
