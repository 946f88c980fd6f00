"""Cameras in one convention: OpenCV (x right, y down, z forward), world-to-camera `viewmats`.

Everything that reads or writes poses converts at its own boundary (COLMAP is already OpenCV;
nerfstudio / Blender use OpenGL camera axes and are flipped by their parsers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Cameras:
    viewmats: Tensor  # (C, 4, 4) world-to-camera
    Ks: Tensor  # (C, 3, 3) pinhole intrinsics in pixels
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.viewmats.ndim == 2:
            self.viewmats = self.viewmats[None]
        if self.Ks.ndim == 2:
            self.Ks = self.Ks[None]
        if self.viewmats.shape[1:] != (4, 4) or self.Ks.shape[1:] != (3, 3):
            raise ValueError("Cameras need viewmats (C,4,4) and Ks (C,3,3)")
        if self.viewmats.shape[0] != self.Ks.shape[0]:
            raise ValueError("viewmats and Ks disagree on the number of cameras")

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def __getitem__(self, index) -> "Cameras":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.viewmats[index], self.Ks[index], self.width, self.height)

    def to(self, device) -> "Cameras":
        return Cameras(self.viewmats.to(device), self.Ks.to(device), self.width, self.height)

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
        return Cameras(self.viewmats, Ks, max(1, round(self.width * factor)), max(1, round(self.height * factor)))


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fov(fov_x: float, width: int, height: int) -> Tensor:
    """Pinhole K with horizontal field of view `fov_x` (radians) and square pixels."""
    f = 0.5 * width / torch.tan(torch.tensor(fov_x) / 2).item()
    return intrinsics(f, f, width / 2, height / 2)


def look_at(eye: Tensor, target: Tensor, up: Tensor = torch.tensor([0.0, 0.0, 1.0])) -> Tensor:
    """World-to-camera (4,4) for an OpenCV camera at `eye` looking at `target`; `up` is world up."""
    eye, target, up = (torch.as_tensor(v, dtype=torch.float32) for v in (eye, target, up))
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up), dim=0)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return torch.linalg.inv(c2w)


def orbit(n: int, radius: float, elevation_deg: float = 20.0, target=(0.0, 0.0, 0.0)) -> Tensor:
    """(n,4,4) viewmats evenly spaced on a circle around `target` (z up)."""
    mats = []
    elev = torch.deg2rad(torch.tensor(elevation_deg))
    for i in range(n):
        az = 2 * torch.pi * i / n
        eye = torch.stack([radius * torch.cos(elev) * torch.cos(torch.tensor(az)),
                           radius * torch.cos(elev) * torch.sin(torch.tensor(az)),
                           radius * torch.sin(elev)]) + torch.tensor(target)
        mats.append(look_at(eye, torch.tensor(target)))
    return torch.stack(mats)
