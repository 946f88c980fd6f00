"""Cameras in one convention: OpenCV (x right, y down, z forward), world-to-camera `viewmats`.

Everything that reads or writes poses converts at its own boundary (COLMAP is already OpenCV;
nerfstudio / Blender use OpenGL camera axes and are flipped by their parsers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Cameras:
    """C pinhole cameras sharing one image size.

    `image_ids` index the images of the split the cameras came from (per-view learned parameters
    such as deblurring's view embedding key on them; None for novel views), `camera_ids` the
    physical camera (multi-view video), `times` the capture time in seconds (None: static scene).
    """

    viewmats: Tensor  # (C, 4, 4) world-to-camera
    Ks: Tensor  # (C, 3, 3) pinhole intrinsics in pixels
    width: int
    height: int
    image_ids: Tensor | None = None  # (C,) long
    camera_ids: Tensor | None = None  # (C,) long
    times: Tensor | None = None  # (C,) float

    def __post_init__(self) -> None:
        if self.viewmats.ndim == 2:
            self.viewmats = self.viewmats[None]
        if self.Ks.ndim == 2:
            self.Ks = self.Ks[None]
        if self.viewmats.shape[1:] != (4, 4) or self.Ks.shape[1:] != (3, 3):
            raise ValueError("Cameras need viewmats (C,4,4) and Ks (C,3,3)")
        if self.viewmats.shape[0] != self.Ks.shape[0]:
            raise ValueError("viewmats and Ks disagree on the number of cameras")
        c = self.viewmats.shape[0]
        for name in ("image_ids", "camera_ids", "times"):
            value = getattr(self, name)
            if value is None:
                continue
            value = torch.as_tensor(value, dtype=torch.float32 if name == "times" else torch.long).reshape(-1)
            if value.shape[0] != c:
                raise ValueError(f"Cameras: {name} has {value.shape[0]} entries for {c} cameras")
            setattr(self, name, value)

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def _pick(self, value: Tensor | None, index) -> Tensor | None:
        return None if value is None else value[index]

    def __getitem__(self, index) -> "Cameras":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.viewmats[index], self.Ks[index], self.width, self.height,
                       self._pick(self.image_ids, index), self._pick(self.camera_ids, index),
                       self._pick(self.times, index))

    def to(self, device) -> "Cameras":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Cameras(self.viewmats.to(device), self.Ks.to(device), self.width, self.height,
                       move(self.image_ids), move(self.camera_ids), move(self.times))

    def with_ids(self, image_ids: Tensor | None = None) -> "Cameras":
        """The same cameras tagged with image ids (default 0..C-1: the split's own indices)."""
        ids = torch.arange(len(self)) if image_ids is None else image_ids
        return Cameras(self.viewmats, self.Ks, self.width, self.height, ids, self.camera_ids, self.times)

    @property
    def camtoworlds(self) -> Tensor:
        return torch.linalg.inv(self.viewmats)

    @property
    def centers(self) -> Tensor:
        return self.camtoworlds[:, :3, 3]

    def scaled(self, factor: float) -> "Cameras":
        """Same cameras at an image size scaled by `factor` (intrinsics follow)."""
        Ks = self.Ks.clone()
        Ks[:, :2, :] *= factor
        return Cameras(self.viewmats, Ks, max(1, round(self.width * factor)), max(1, round(self.height * factor)),
                       self.image_ids, self.camera_ids, self.times)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fov(fov_x: float, width: int, height: int) -> Tensor:
    """Pinhole K with horizontal field of view `fov_x` (radians) and square pixels."""
    f = 0.5 * width / torch.tan(torch.tensor(fov_x) / 2).item()
    return intrinsics(f, f, width / 2, height / 2)


def look_at(eye: Tensor, target: Tensor, up: Tensor = torch.tensor([0.0, 0.0, 1.0])) -> Tensor:
    """World-to-camera (4,4) float32 for an OpenCV camera at `eye` looking at `target`; `up` is world up.

    Built in float64 and rounded once at the end: a camera far from the origin (say at 1e8) looking
    at a nearby target would otherwise lose its viewing direction to float32 rounding."""
    eye, target, up = (torch.as_tensor(v, dtype=torch.float64) for v in (eye, target, up))
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    right = torch.linalg.cross(forward, up)
    if right.norm() < 1e-9:  # looking straight along `up` (an orbit at +-90 degrees): any right will do
        right = torch.linalg.cross(forward, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    right = torch.nn.functional.normalize(right, dim=0)
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, :3] = R
    viewmat[:3, 3] = -R @ eye
    return viewmat.float()


def orbit(n: int, radius: float, elevation_deg: float = 20.0, target=(0.0, 0.0, 0.0)) -> Tensor:
    """(n,4,4) viewmats evenly spaced on a circle around `target` (z up)."""
    mats = []
    elev = math.radians(elevation_deg)
    target = torch.as_tensor(target, dtype=torch.float64)
    for i in range(n):
        az = 2 * math.pi * i / n
        eye = torch.tensor([radius * math.cos(elev) * math.cos(az), radius * math.cos(elev) * math.sin(az),
                            radius * math.sin(elev)], dtype=torch.float64) + target
        mats.append(look_at(eye, target))
    return torch.stack(mats)


class FramingError(ValueError):
    """A scene no camera can frame within the renderer's range (one-line message)."""


#: the rasterizer culls everything deeper than its far plane (1e10); an orbit camera must stay well inside it
MAX_FRAMING_DISTANCE = 3e9
#: float32 keeps ~7 digits: a camera at |c| from the origin cannot resolve a scene much smaller than |c| / 1e6
MAX_OFFSET_RATIO = 1e6
