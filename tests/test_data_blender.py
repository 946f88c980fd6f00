"""Blender-synthetic layout: camera_angle_x intrinsics, OpenGL->OpenCV flip, RGBA compositing, splits."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.data import load_scene
from splatlab.data.blender import load_blender

S = 16
ANGLE = 0.6911112070083618  # the value in the NeRF synthetic scenes


def gl_look_at(eye, target=np.zeros(3), up=np.array([0.0, 0.0, 1.0])):
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def rgba_image(seed):
    arr = np.zeros((S, S, 4), np.uint8)
    arr[..., 1] = 200  # green everywhere
    arr[: S // 2, :, 3] = 255  # top half opaque
    arr[S // 2:, : S // 2, 3] = 128  # bottom-left half transparent
    arr[0, 0, 0] = seed  # (differs per image)
    return arr  # bottom-right fully transparent


def make_blender(root, counts=(("train", 5), ("val", 2), ("test", 3)), with_ext=False):
    root.mkdir(parents=True, exist_ok=True)
    poses = {}
    for split, n in counts:
        (root / split).mkdir()
        frames = []
        for i in range(n):
            ang = 2 * math.pi * i / n + (0.3 if split != "train" else 0.0)
            eye = np.array([4.0 * math.cos(ang), 4.0 * math.sin(ang), 1.0 + 0.1 * i])
            Image.fromarray(rgba_image(i)).save(root / split / f"r_{i}.png")
            fp = f"./{split}/r_{i}" + (".png" if with_ext else "")
            frames.append({"file_path": fp, "rotation": 0.0, "transform_matrix": gl_look_at(eye).tolist()})
            poses[fp] = gl_look_at(eye)
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": ANGLE, "frames": frames}))
    return poses


def test_cameras_and_splits(tmp_path):
    poses = make_blender(tmp_path / "lego")
    scene = load_scene(tmp_path / "lego")
    assert scene.format == "blender"
    assert len(scene.train) == 5 and len(scene.test) == 3
    assert scene.points is None and scene.points_rgb is None
    assert (scene.width, scene.height) == (S, S)
    focal = 0.5 * S / math.tan(ANGLE / 2)
    torch.testing.assert_close(scene.train.cameras.Ks[0], torch.tensor([[focal, 0, S / 2], [0, focal, S / 2], [0, 0, 1.0]]))
    for views in (scene.train, scene.test):
        for i, name in enumerate(views.names):
            vm = views.cameras.viewmats[i].double()
            c2w = torch.linalg.inv(vm).numpy()
            np.testing.assert_allclose(c2w[:3, 3], poses[name][:3, 3], atol=1e-5)
            # OpenCV: the origin (looked at) is straight ahead at positive depth, world up is image up
            p = vm @ torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
            assert p[2] > 0 and abs(p[0]) < 1e-5 and abs(p[1]) < 1e-5
            above = vm @ torch.tensor([0.0, 0.0, 0.5, 1.0], dtype=torch.float64)
            assert above[1] < 0  # higher in the world -> smaller image y
    centers = torch.linalg.inv(scene.train.cameras.viewmats.double())[:, :3, 3]
    assert scene.scene_scale == pytest.approx(1.1 * (centers - centers.mean(0)).norm(dim=1).max().item(), rel=1e-5)
    val = load_blender(tmp_path / "lego", test_split="val")
    assert len(val.test) == 2


@pytest.mark.parametrize("background", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0.0, 0.5)])
def test_rgba_composited_on_background(tmp_path, background):
    make_blender(tmp_path / "s", with_ext=True)
    scene = load_scene(tmp_path / "s", background=background)
    bg = torch.tensor(background)
    torch.testing.assert_close(scene.background, bg)
    rgb, alpha = scene.train.load(1)
    assert rgb.shape == (S, S, 3) and alpha.shape == (S, S, 1)
    g = 200 / 255
    torch.testing.assert_close(rgb[2, 3], torch.tensor([0.0, g, 0.0]))  # opaque
    torch.testing.assert_close(rgb[-1, -1], bg)  # transparent -> background
    a = 128 / 255
    torch.testing.assert_close(rgb[-1, 0], torch.tensor([0.0, g, 0.0]) * a + bg * (1 - a), atol=1e-5, rtol=0)
    torch.testing.assert_close(scene.train.load_image(1), rgb)


def test_downscale_resizes_and_scales_intrinsics(tmp_path):
    make_blender(tmp_path / "s")
    full = load_scene(tmp_path / "s")
    half = load_scene(tmp_path / "s", downscale=2)
    assert (half.width, half.height) == (S // 2, S // 2)
    torch.testing.assert_close(half.train.cameras.Ks[:, :2], full.train.cameras.Ks[:, :2] / 2)
    img = half.test.load_image(0)
    assert img.shape == (S // 2, S // 2, 3)
    # the opaque green top half stays green after resizing
    torch.testing.assert_close(img[1, 3], torch.tensor([0.0, 200 / 255, 0.0]), atol=2e-2, rtol=0)


def test_cache_images_in_memory(tmp_path):
    make_blender(tmp_path / "s")
    scene = load_scene(tmp_path / "s", cache_images=True)
    a = scene.train.load_image(0)
    (tmp_path / "s" / "train" / "r_0.png").unlink()  # served from memory now
    torch.testing.assert_close(scene.train.load_image(0), a)
