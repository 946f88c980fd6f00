"""Floater controls: the regularisers' gradients, visibility counting and pruning on hand-made
cameras, and where the background / fallback initial points go."""
from __future__ import annotations

import math

import torch

from splatlab.cameras import intrinsics, look_at
from splatlab.densify import DefaultStrategy
from splatlab.densify.floaters import regulariser_terms, views_containing
from splatlab.gaussians import Gaussians


def gaussians_at(means: torch.Tensor, seed: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    n = len(means)
    return Gaussians.from_fields({
        "means": means.float(), "quats": torch.randn(n, 4, generator=g),
        "scales": 0.3 * torch.randn(n, 3, generator=g) - 2.0, "opacities": torch.randn(n, generator=g),
        "sh0": torch.randn(n, 1, 3, generator=g), "shN": torch.zeros(n, 0, 3)})


def test_regularisers_match_finite_differences():
    model = gaussians_at(torch.randn(7, 3, generator=torch.Generator().manual_seed(1)))
    params = model.params
    loss = sum(regulariser_terms(model, 0.3, 0.7).values())
    loss.backward()

    def value() -> float:
        with torch.no_grad():
            return 0.3 * torch.sigmoid(params["opacities"].double()).mean().item() + \
                0.7 * torch.exp(params["scales"].double()).mean().item()

    eps = 1e-3
    for name, index in (("opacities", (2,)), ("opacities", (5,)), ("scales", (1, 0)), ("scales", (6, 2))):
        p = params[name]
        with torch.no_grad():
            p[index] += eps
            up = value()
            p[index] -= 2 * eps
            down = value()
            p[index] += eps
        fd = (up - down) / (2 * eps)
        assert math.isclose(p.grad[index].item(), fd, rel_tol=1e-3, abs_tol=1e-7), (name, index)
    assert regulariser_terms(model, 0.0, 0.0) == {}


def ring_cameras(n: int = 8, radius: float = 4.0, elevation: float = 40.0, f: float = 50.0, size: int = 64):
    """`n` cameras on a circle at `elevation` degrees looking down at the origin (OpenCV viewmats),
    focal `f` px, as the random scenes' cameras look at their objects from above."""
    e = math.radians(elevation)
    eyes = [radius * torch.tensor([math.cos(e) * math.cos(2 * math.pi * i / n),
                                   math.cos(e) * math.sin(2 * math.pi * i / n), math.sin(e)]) for i in range(n)]
    viewmats = torch.stack([look_at(eye, torch.zeros(3)) for eye in eyes])
    Ks = intrinsics(f, f, size / 2, size / 2)[None].repeat(n, 1, 1)
    return viewmats, Ks, size, eyes


def test_views_containing_counts_by_hand():
    viewmats, Ks, size, eyes = ring_cameras()
    # half field of view atan(32 / 50) = 32.6 deg, cameras 40 deg above the horizon: the origin is in
    # all 8 views; a point 1 unit in front of camera 0 in 3 (the cameras across the ring
    # look down, 40 deg past it, and only the two neighbours see it from the side); a point straight up, in none; a point 2 units beyond the origin
    # (below the floor) on camera 0's axis: whatever the direct projection says
    axis0 = -eyes[0] / eyes[0].norm()
    near0 = eyes[0] + axis0
    points = torch.stack([torch.zeros(3), near0, torch.tensor([0.0, 0.0, 50.0]), 2.0 * axis0])
    count = views_containing(points, viewmats, Ks, size, size, chunk=3)
    # check each against a direct projection (camera looks along its +z towards the origin)
    expected = []
    for p in points:
        k = 0
        for vm in viewmats:
            c = vm[:3, :3] @ p + vm[:3, 3]
            if c[2] > 1e-2:
                u, v = 50 * c[0] / c[2] + 32, 50 * c[1] / c[2] + 32
                k += int(0 <= u < 64 and 0 <= v < 64)
        expected.append(k)
    assert count.tolist() == expected
    assert expected[:3] == [8, 3, 0]  # camera 0 and its two neighbours


def test_view_fraction_prunes_near_camera_floaters_only_inside_the_rig():
    viewmats, Ks, size, eyes = ring_cameras()
    near0 = eyes[0] * 0.75  # a unit in front of camera 0
    means = torch.stack([torch.zeros(3), near0, torch.tensor([0.1, 0.2, 0.0]),
                         torch.tensor([0.0, 0.0, 50.0])])  # centre, floater by camera 0, centre, sky
    model = gaussians_at(means)
    with torch.no_grad():
        model.params["opacities"][:] = 3.0
        model.params["scales"][:] = math.log(0.01)
    opt = torch.optim.Adam(model.param_groups({k: 1e-3 for k in model.params}), eps=1e-15)
    strat = DefaultStrategy(min_view_fraction=0.5, reset_every=1000)  # fewer than 4 of 8
    state = strat.initialize_state(scene_scale=4.4, seed=0, scene_center=(0.0, 0.0, 0.0))
    strat.set_views(viewmats, Ks, size, size)
    report = strat.prune(model, {"gaussians": opt}, state, step=600)
    assert report == {"pruned": 1}
    kept = model.params["means"].detach()
    assert torch.allclose(kept, means[[0, 2, 3]])  # the far point is seen by few views but is not a floater
    assert DefaultStrategy(min_view_fraction=0.0).prune(model, {"gaussians": opt}, state, 600) == {"pruned": 0}


def test_sphere_layout_puts_background_points_at_the_far_distance():
    from splatlab.data import load_scene
    from splatlab.train import TrainConfig
    from splatlab.train.init import background_range, init_points

    garden = load_scene("scenes/garden", downscale=4)
    centers = garden.train.cameras.centers.float()
    n_sfm = len(garden.points)
    _, far = background_range(garden, garden.points.float())
    for layout in ("sphere", "disparity"):
        cfg = TrainConfig(init_num_points=400, background_layout=layout)
        pts, _, n_bg = init_points(garden, cfg, torch.Generator().manual_seed(0))
        assert n_bg == 200
        # distance from the camera whose ray the point is on: exactly `far` for some training camera
        off = (torch.cdist(pts[n_sfm:].double(), centers.double()) - far).abs().min(dim=1).values
        at_far = (off < 1e-3 * far).float().mean().item()
        assert at_far == 1.0 if layout == "sphere" else at_far < 0.1


def test_init_radius_shrinks_the_random_ball_around_the_focus():
    from splatlab.data import load_scene
    from splatlab.train.init import camera_focus, random_init_points

    scene = load_scene("scenes/robot", downscale=4)
    centre, radius = camera_focus(scene)
    g = torch.Generator().manual_seed(0)
    full = (random_init_points(scene, 2000, g) - centre).norm(dim=1)
    half = (random_init_points(scene, 2000, g, radius_factor=0.5) - centre).norm(dim=1)
    assert full.max() <= radius * 1.0001 and full.max() > 0.9 * radius
    assert half.max() <= 0.5 * radius * 1.0001 and half.max() > 0.45 * radius


def test_floater_options_validate_and_reach_the_strategy():
    import pytest

    from splatlab.train import TrainConfig

    TrainConfig(scene="x").validate()  # the regularisers' None (strategy default) is valid
    cfg = TrainConfig(scene="x", prune_view_fraction=0.1, opacity_reg=0.01, scale_reg=0.02, background_layout="sphere")
    cfg.validate()
    strat = cfg.make_strategy()
    assert (strat.min_view_fraction, strat.opacity_reg, strat.scale_reg) == (0.1, 0.01, 0.02)
    for bad in ({"prune_view_fraction": 1.0}, {"opacity_reg": -1.0}, {"background_layout": "cube"},
                {"init_radius": 0.0}):
        with pytest.raises(ValueError):
            TrainConfig(scene="x", **bad).validate()
