"""A tiny synthetic Blender-layout scene rendered from a known set of Gaussians (used by the training tests)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from splatlab.cameras import intrinsics_from_fov, look_at
from splatlab.data import load_scene
from splatlab.render import rasterize

FOV = 0.8


def known_gaussians(n: int = 40, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.0
    quats = torch.randn(n, 4, generator=g)
    scales = 0.06 + 0.1 * torch.rand(n, 3, generator=g)
    opac = 0.6 + 0.4 * torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    return means, quats, scales, opac, colors


def camera_eyes(n: int, radius: float = 3.0):
    eyes = []
    for i in range(n):
        az = 2 * math.pi * i / n + 0.3 * (i % 2)
        el = math.radians(15 + 30 * (i % 3) / 2)
        eyes.append([radius * math.cos(el) * math.cos(az), radius * math.cos(el) * math.sin(az), radius * math.sin(el)])
    return torch.tensor(eyes)


def make_scene(root, size: int = 32, n_train: int = 12, n_test: int = 3, seed: int = 0) -> Path:
    """Write `root/transforms_{train,test}.json` + PNGs of `known_gaussians` on white."""
    root = Path(root)
    means, quats, scales, opac, colors = known_gaussians(seed=seed)
    K = intrinsics_from_fov(FOV, size, size)
    eyes = camera_eyes(n_train + n_test)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    for split, idx in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for j, i in enumerate(idx):
            vm = look_at(eyes[i], torch.zeros(3))
            img, _, _ = rasterize(means, quats, scales, opac, colors, vm[None], K[None], size, size,
                                  backgrounds=torch.ones(1, 3))
            arr = (img[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
            Image.fromarray(arr).save(root / split / f"r_{j}.png")
            c2w = torch.linalg.inv(vm) @ flip
            frames.append({"file_path": f"./{split}/r_{j}", "transform_matrix": c2w.tolist()})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": FOV, "frames": frames}))
    return root


def test_synthetic_scene_loads(tmp_path):
    root = make_scene(tmp_path / "s", size=16, n_train=4, n_test=2)
    scene = load_scene(root)
    assert (scene.width, scene.height) == (16, 16)
    assert len(scene.train) == 4 and len(scene.test) == 2
    img = scene.train.load_image(0)
    assert img.min() < 0.9  # something was drawn on the white background
