"""Plane-sweep initialisation (`splatlab.train.sweep`) on hand-made scenes with a known answer, and the
temporal method's placement of timed initial points in time (closed form)."""
from __future__ import annotations

import math

import torch

from splatlab.methods import make_method
from splatlab.train.sweep import _backproject, neighbours_of, sweep_depths

W = H = 48
F = 40.0
K = torch.tensor([[F, 0.0, W / 2], [0.0, F, H / 2], [0.0, 0.0, 1.0]])
DEPTH = 3.0


def _texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A non-periodic colour pattern on the plane (incommensurate frequencies)."""
    r = 0.5 + 0.25 * torch.sin(7.3 * x + 2.1 * y) + 0.2 * torch.sin(3.1 * x - 5.7 * y)
    g = 0.5 + 0.3 * torch.sin(4.9 * x * 1.3 + 6.1 * y)
    b = 0.5 + 0.3 * torch.cos(2.3 * x - 8.2 * y + 1.0)
    return torch.stack([r, g, b], -1).clamp(0, 1)


def _camera(x: float) -> torch.Tensor:
    """World-to-camera of a camera at (x, 0, 0) looking down +z (OpenCV axes)."""
    vm = torch.eye(4)
    vm[0, 3] = -x
    return vm


def _image(x: float, uniform: bool = False) -> torch.Tensor:
    """What the camera at (x, 0, 0) sees of the plane z = DEPTH (exact ray-plane intersection)."""
    v, u = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    px = x + (u - W / 2) / F * DEPTH
    py = (v - H / 2) / F * DEPTH
    img = _texture(px, py)
    return torch.full_like(img, 0.4) if uniform else img


def test_sweep_finds_the_plane_depth_and_rejects_uniform_regions():
    xs = [0.0, -0.4, 0.4]
    others = [(_image(x), _camera(x), K) for x in xs[1:]]
    d = sweep_depths(_image(0.0), _camera(0.0), K, others, near=1.0, far=10.0, n_depths=64)
    found = torch.isfinite(d)
    assert found.float().mean() > 0.5  # most textured pixels match
    # the depth step near DEPTH: consecutive planes are (1/near - 1/far)/63 apart in disparity
    step = DEPTH ** 2 * (1.0 - 0.1) / 63
    assert float((d[found] - DEPTH).abs().median()) <= step
    pts = _backproject(d, _camera(0.0), K)[found]
    assert float((pts[:, 2] - DEPTH).abs().median()) <= step
    # a uniform plane matches at every depth: nothing is kept
    flat = [(_image(x, uniform=True), _camera(x), K) for x in xs[1:]]
    d_flat = sweep_depths(_image(0.0, uniform=True), _camera(0.0), K, flat, near=1.0, far=10.0, n_depths=64)
    assert not bool(torch.isfinite(d_flat).any())


def test_neighbours_are_the_most_similar_viewing_directions():
    def yaw(a: float) -> torch.Tensor:  # camera at the origin turned by a about the y axis
        c, s = math.cos(a), math.sin(a)
        vm = torch.eye(4)
        vm[:3, :3] = torch.tensor([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
        return vm

    vms = torch.stack([yaw(a) for a in (0.0, 0.1, 0.5, 1.0, -0.2)])
    assert neighbours_of(vms, 2)[0] == [1, 4]
    assert neighbours_of(vms, 1)[3] == [2]


class _Views:
    def __init__(self, times):
        from splatlab.cameras import Cameras

        n = len(times)
        self.cameras = Cameras(torch.eye(4).expand(n, 4, 4).clone(), K.expand(n, 3, 3).clone(), W, H, None,
                               torch.zeros(n, dtype=torch.long), torch.tensor(times))


class _Scene:
    def __init__(self, times):
        self.train = _Views(times)


def test_temporal_places_timed_points_at_their_frame():
    m = make_method("temporal", {})
    scene = _Scene([0.0, 0.5, 1.0, 1.5])  # 4 frames at 2 fps: duration 2 s, frame interval 0.5 s
    fields = m.extra_fields(3, None)
    default_scale = fields["t_log_scale"][1].clone()
    times = torch.tensor([0.5, float("nan"), 1.5])
    m.place_in_time(fields, times, scene)
    assert m.config.duration == 2.0
    torch.testing.assert_close(fields["t_mean"][[0, 2], 0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(fields["t_log_scale"][[0, 2], 0], torch.full((2,), math.log(0.5 / 2.0)))
    torch.testing.assert_close(fields["t_log_scale"][1], default_scale)  # untimed rows keep their defaults


def test_box_sums_match_brute_force_window_sums():
    from splatlab.train.sweep import box_sums

    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 9, 12, generator=g)
    got = box_sums(x, 5)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    want = torch.zeros_like(x)
    for i in range(9):
        for j in range(12):
            want[:, i, j] = padded[:, i:i + 5, j:j + 5].sum(dim=(1, 2))
    assert torch.allclose(got, want, atol=1e-5)


def test_compiled_plane_costs_match_grid_sample():
    """The compiled cost pass against the torch version (grid_sample's bilinear, border padding):
    points behind the camera, outside the image and inside it, a neighbour image of another size."""
    from splatlab.train.sweep import plane_costs, plane_costs_torch

    g = torch.Generator().manual_seed(11)
    h, w, d = 23, 31, 12
    b = torch.randn(h, w, 3, generator=g) * 0.4 + torch.tensor([0.0, 0.0, 0.6])
    a = torch.tensor([0.2, -0.1, 0.1])
    depths = torch.linspace(-0.5, 6.0, d)  # negative depths put points behind the camera
    Kn = torch.tensor([[30.0, 0.0, 19.0], [0.0, 28.0, 14.0], [0.0, 0.0, 1.0]])
    img, ref = torch.rand(29, 37, 3, generator=g), torch.rand(h, w, 3, generator=g)
    got, want = plane_costs(a, b, depths, Kn, img, ref), plane_costs_torch(a, b, depths, Kn, img, ref)
    valid = want[d:]
    assert 0.2 < valid.mean() < 0.8  # both branches are exercised
    assert torch.equal(got[d:], valid)
    torch.testing.assert_close(got[:d], want[:d], atol=2e-6, rtol=0)


def test_compiled_depth_choice_matches_torch_selection():
    """The compiled per-pixel choice (best two neighbours, lowest cost, lower median for the
    contrast) against the torch formulation (topk, min, nanmedian), with tied costs, patches too
    thin to count and 1, 2 or 4 neighbours."""
    from splatlab.train.sweep import best_depths, best_depths_torch

    g = torch.Generator().manual_seed(3)
    h, w, d = 9, 14, 10
    inside = torch.randint(9, 26, (h, w), generator=g).float()
    depths = torch.linspace(1.0, 4.0, d)
    for n in (1, 2, 4):
        den = torch.randint(0, 26, (n, d, h, w), generator=g).float()
        num = (torch.rand(n, d, h, w, generator=g) * 8).round() / 80 * den  # coarse costs: many ties
        sums = torch.cat([num, den], 1)
        got = best_depths(sums, inside, depths, 0.06, 0.02)
        want = best_depths_torch(sums, inside, depths, 0.06, 0.02)
        assert 0.05 < want.isnan().float().mean() < 0.95, n
        assert torch.equal(got.isnan(), want.isnan()), n
        assert torch.equal(got[~got.isnan()], want[~want.isnan()]), n
