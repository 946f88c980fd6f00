"""Initialisation: background points along training rays, and which scenes get them."""
from __future__ import annotations

import shutil

import numpy as np
import torch

from splatlab.data import load_scene
from splatlab.train import TrainConfig
from splatlab.train.init import has_background, init_points, view_ray_points


def test_view_ray_points_reproject_onto_their_pixel_colour():
    scene = load_scene("scenes/garden", cache_images=True)
    g = torch.Generator().manual_seed(0)
    pts, rgb = view_ray_points(scene, 400, near=10.0, far=300.0, generator=g)
    cams = scene.train.cameras
    hit = torch.zeros(len(pts), dtype=torch.bool)
    for i in range(len(scene.train)):
        vm, K = cams.viewmats[i].float(), cams.Ks[i].float()
        c = pts @ vm[:3, :3].T + vm[:3, 3]
        u, v = K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2], K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]
        d = (pts - cams.centers[i].float()).norm(dim=1)
        ok = (c[:, 2] > 0) & (u >= 0) & (u < scene.width) & (v >= 0) & (v < scene.height)
        ok &= (d > 10.0 - 1e-3) & (d < 300.0 + 1e-2)
        img = scene.train.load_image(i)
        k = torch.nonzero(ok)[:, 0]
        same = (img[v[k].long(), u[k].long()] - rgb[k]).abs().max(dim=1).values < 1e-6
        hit[k[same]] = True
    # each point lies on a ray of a training view, within [near, far], through a pixel of its colour
    assert hit.float().mean() > 0.98


def test_background_points_only_for_opaque_photos(tmp_path):
    # robot as shipped (no points): a user's earlier `splatlab train scenes/robot` caches its automatic
    # triangulation beside the scene, which must not change what this test measures
    shutil.copytree("scenes/robot", tmp_path / "robot",
                    ignore=shutil.ignore_patterns("points3d.ply", "triangulation.json", ".splatlab_cache"))
    garden, robot = load_scene("scenes/garden"), load_scene(tmp_path / "robot")
    assert has_background(garden) and not has_background(robot)
    cfg = TrainConfig(init_num_points=500, init_sweep="off")  # the random fallback, as without the sweep
    g = torch.Generator().manual_seed(0)
    pts_r, _, _ = init_points(robot, cfg, g)
    assert len(pts_r) == 500
    pts_g, _, n_bg = init_points(garden, cfg, g)
    assert garden.points is not None  # scenes/garden/points3d.ply (splatlab triangulate)
    n_sfm = len(garden.points)
    assert len(pts_g) == n_sfm + 250 and n_bg == 250
    far = (pts_g[n_sfm:] - garden.train.cameras.centers.float().mean(0)).norm(dim=1)
    near = (pts_g[:n_sfm] - garden.train.cameras.centers.float().mean(0)).norm(dim=1)
    assert np.median(far.numpy()) > 3 * np.median(near.numpy())
    pts_none, _, _ = init_points(garden, TrainConfig(init_num_points=500, background_points=0), g)
    assert len(pts_none) == n_sfm


def test_view_ray_points_skip_excluded_pixels():
    # a known surface in front of a pixel (a plane-sweep match) needs no background point behind it:
    # with every pixel but the top-left quarter excluded, every point reprojects into that quarter
    scene = load_scene("scenes/garden", cache_images=True)
    h, w = scene.height, scene.width
    excluded = torch.ones(h, w, dtype=torch.bool)
    excluded[: h // 4, : w // 4] = False
    g = torch.Generator().manual_seed(0)
    pts, rgb = view_ray_points(scene, 300, near=10.0, far=300.0, generator=g,
                               excluded=[excluded] * len(scene.train))
    cams = scene.train.cameras
    inside = torch.zeros(len(pts), dtype=torch.bool)
    for i in range(len(scene.train)):
        vm, K = cams.viewmats[i].float(), cams.Ks[i].float()
        c = pts @ vm[:3, :3].T + vm[:3, 3]
        u, v = K[0, 0] * c[:, 0] / c[:, 2] + K[0, 2], K[1, 1] * c[:, 1] / c[:, 2] + K[1, 2]
        img = scene.train.load_image(i)
        ok = (c[:, 2] > 0) & (u >= 0) & (u < w // 4) & (v >= 0) & (v < h // 4)
        k = torch.nonzero(ok)[:, 0]
        same = (img[v[k].long(), u[k].long()] - rgb[k]).abs().max(dim=1).values < 1e-6
        inside[k[same]] = True
    assert inside.float().mean() > 0.98
