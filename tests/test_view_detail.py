"""The viewer's time slider (temporal scenes) and level-of-detail control (hierarchical scenes): what
they make the viewer draw equals the render path called directly at that time / cut, and the
counts shown are the Gaussians active at that time / in that view's cut, counted by hand."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.cameras import Cameras
from splatlab.gaussians import Gaussians, MethodSpec
from splatlab.methods import hierarchical as hier
from splatlab.render import render
from splatlab.render.api import rasterize
from splatlab.view.render import RenderSet, look_at_camera, render_image, to_uint8

viser = pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")

W, H = 64, 48
DURATION = 2.0
N_STATIC, N_A, N_B = 120, 40, 30


def temporal_scene() -> Gaussians:
    """A static shell (global level) and two clusters that exist only in the first / second half of
    a 2 s clip (t_mean 0.25 / 0.75 of it, σt 0.05: supports [0.128, 0.372] / [0.628, 0.872], each
    inside one level-2 segment) and move with a velocity."""
    gen = torch.Generator().manual_seed(0)
    parts = []
    for n, centre, colour, t_mean, sigma, vel in ((N_STATIC, (0, 0, 0), (0.2, 0.6, 0.9), 0.5, 1.0, (0, 0, 0)),
                                                  (N_A, (0.5, 0, 0), (1.0, 0.3, 0.1), 0.25, 0.05, (0, 0.8, 0)),
                                                  (N_B, (-0.5, 0, 0), (0.1, 1.0, 0.2), 0.75, 0.05, (0, 0, 0.8))):
        v = torch.randn(n, 3, generator=gen)
        pts = torch.tensor(centre) + (0.8 if n == N_STATIC else 0.2) * v / v.norm(dim=1, keepdim=True)
        g = Gaussians.from_points(pts, torch.tensor(colour).expand(n, 3), torch.full((n,), 0.09), opacity=0.8,
                                  sh_degree=0)
        f = g.detached_fields()
        f["t_mean"] = torch.full((n, 1), t_mean)
        f["t_log_scale"] = torch.full((n, 1), math.log(sigma))
        f["velocity"] = torch.tensor(vel, dtype=torch.float32).expand(n, 3).clone()
        parts.append(f)
    fields = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    return Gaussians.from_fields(fields, MethodSpec("temporal", {"levels": 3, "duration": DURATION}))


def hier_scene() -> Gaussians:
    gen = torch.Generator().manual_seed(5)
    n_roots, k = 25, 4
    level, parent = [0] * n_roots, [-1] * n_roots
    for lv in (1, 2):
        for i in [i for i, l in enumerate(level) if l == lv - 1]:
            level += [lv] * k
            parent += [i] * k
    n = len(level)
    root = torch.tensor(parent) < 0
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1
    return Gaussians.from_fields({
        "means": torch.where(root[:, None], torch.rand(n, 3, generator=gen) - 0.5, torch.randn(n, 3, generator=gen)),
        "quats": quats, "scales": torch.where(root[:, None], torch.full((n, 3), math.log(0.15)), torch.zeros(n, 3)),
        "opacities": torch.full((n,), 2.0), "sh0": 0.6 * torch.randn(n, 1, 3, generator=gen),
        "shN": torch.zeros(n, 0, 3), hier.LEVEL: torch.tensor(level, dtype=torch.float32),
        hier.PARENT: torch.tensor(parent, dtype=torch.float32)}, MethodSpec("hierarchical", {}))


@pytest.fixture
def make_app(tmp_path):
    from splatlab.view.app import DISPLAY_SERVER, ViewerApp
    from splatlab.view.source import ViewSource

    made = []

    def make(g: Gaussians):
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
        app = ViewerApp(server, ViewSource(g, "scene", "", 0, "memory"), out_dir=str(tmp_path),
                        display=DISPLAY_SERVER, max_resolution=W)
        made.append((app, server))
        return app

    yield make
    for app, server in made:
        app.stop()
        server.stop()


def camera(distance: float = 3.5):
    return look_at_camera((distance, -0.4 * distance, 0.5 * distance), (0, 0, 0), math.radians(50), W / H)


def shot(app, cam, path) -> np.ndarray:
    """What the viewer sends for this view (its screenshot renders the client's image path)."""
    app.screenshot(cam, str(path))
    return np.asarray(Image.open(path), dtype=np.int32)


def direct(g: Gaussians, cam, t: float | None = None) -> np.ndarray:
    """The reference: the one render path called directly, at moment t."""
    cams = Cameras(cam.viewmat()[None], cam.K(W, H)[None], W, H,
                   times=None if t is None else torch.tensor([float(t)]))
    with torch.no_grad():
        img = render(g, cams, background=torch.zeros(3)).images[0].clamp(0, 1).numpy()
    return to_uint8(img).astype(np.int32)


def test_time_slider_renders_that_moment_and_counts_its_active_gaussians(make_app, tmp_path):
    g = temporal_scene()
    app = make_app(g)
    assert app.gui_time is not None and app.duration == DURATION
    cam = camera()
    images = {}
    for t, active in ((0.4, N_STATIC + N_A), (1.5, N_STATIC + N_B)):
        app.set_time(t)
        assert app.render_set.time == pytest.approx(t)
        images[t] = shot(app, cam, tmp_path / f"t{t}.png")
        assert np.abs(images[t] - direct(g, cam, t)).max() <= 1
        # by construction: the shell plus the one cluster whose half of the clip holds t
        assert app.render_set.drawn_count(cam, W, H) == active
        assert len(app.render_set.plain) == active  # browser splats: the slice at t
    assert np.abs(images[0.4] - images[1.5]).mean() > 1.0  # the slider changed the picture
    # the slice at t is the closed form: cluster A moved by v (τ - μt) with opacity scaled by w(τ)
    tau = 0.4 / DURATION
    a_rows = slice(N_STATIC, N_STATIC + N_A)
    app.set_time(0.4)
    plain = app.render_set.plain
    want = g.means.detach()[a_rows] + torch.tensor([0, 0.8, 0]) * (tau - 0.25)
    torch.testing.assert_close(plain.means[N_STATIC:], want, atol=1e-6, rtol=0)
    w = math.exp(-0.5 * ((tau - 0.25) / 0.05) ** 2)
    torch.testing.assert_close(plain.opacities[N_STATIC:], torch.full((N_A,), 0.8 * w), atol=1e-5, rtol=0)


def test_frame_stepping_and_play_move_the_slider(make_app):
    app = make_app(temporal_scene())
    app.frame_step = 0.05  # 40 frames in the 2 s clip
    app.set_time(0.0)
    assert app.step_frame(3) == pytest.approx(0.15)
    assert app.step_frame(-4) == pytest.approx(1.95)  # wraps to the last frame
    app.set_time(0.0)
    app.play(True)
    time.sleep(0.6)
    app.play(False)
    moved = float(app.gui_time.value)
    assert moved > 0.1, moved  # advanced by about one frame per 0.05 s
    time.sleep(0.2)
    assert float(app.gui_time.value) == moved  # paused


def test_lod_control_renders_the_cut_and_the_count_falls_with_distance(make_app, tmp_path):
    g = hier_scene()
    app = make_app(g)
    assert app.gui_cut is not None
    level, parent = hier.tree_of(g)
    cam = camera(3.0)
    finest = shot(app, cam, tmp_path / "finest.png")
    assert np.abs(finest - direct(g, cam)).max() <= 1
    assert app.render_set.drawn_count(cam, W, H) == 25 * 16

    app.set_level(0)
    coarse = shot(app, cam, tmp_path / "l0.png")
    assert app.render_set.drawn_count(cam, W, H) == 25
    rows = hier.level_cut(level, parent, 0)
    plain = hier.bake(g, rows)  # reference: level 0 baked to plain 3DGS, rasterized directly
    cams = Cameras(cam.viewmat()[None], cam.K(W, H)[None], W, H)
    ref, _, _ = rasterize(means=plain.means, quats=plain.quats, scales=plain.scales, opacities=plain.opacities,
                          colors=plain.sh_coeffs, sh_degree=0, viewmats=cams.viewmats, Ks=cams.Ks, width=W,
                          height=H, backgrounds=torch.zeros(1, 3))
    assert np.abs(coarse - to_uint8(ref[0].detach().clamp(0, 1).numpy()).astype(np.int32)).max() <= 1
    assert np.abs(coarse - finest).mean() > 1.0

    app.set_lod(3.0)
    counts = []
    for d in (1.5, 3.0, 12.0):
        c = camera(d)
        img = shot(app, c, tmp_path / f"lod{d}.png")
        lod_g = Gaussians.from_fields(g.detached_fields(), MethodSpec("hierarchical", {"lod": 3.0}))
        assert np.abs(img - direct(lod_g, c)).max() <= 1
        a = hier.resolve(g)
        cams = Cameras(c.viewmat()[None], c.K(W, H)[None], W, H)
        want = len(hier.lod_cut(level, parent, hier.projected_size(a["means"], a["log_scales"], cams)[0], 3.0))
        counts.append(app.render_set.drawn_count(c, W, H))
        assert counts[-1] == want
        assert len(app.render_set.plain_for_view(c, W, H)) == want  # browser splats: this view's cut
    assert counts[0] > counts[1] > counts[2]


def test_static_scene_has_no_detail_controls(make_app):
    from splatlab.view.testing import textured_sphere

    app = make_app(textured_sphere(100))
    assert app.gui_time is None and app.gui_cut is None
    rs = RenderSet.build(textured_sphere(100))
    cam = camera()
    assert rs.drawn_count(cam, W, H) == 100
    np.testing.assert_array_equal(render_image(rs.at(None), cam, W, H), render_image(rs, cam, W, H))


def test_filters_on_a_hierarchical_scene_drop_whole_subtrees():
    from splatlab.view.render import ViewFilter

    g = hier_scene()
    level, parent = hier.tree_of(g)
    a = hier.resolve(g)
    # crop away the roots whose absolute centre has x > 0: they go with all their descendants
    rs = RenderSet.build(g, ViewFilter(crop_min=(-9, -9, -9), crop_max=(0.0, 9, 9)))
    l2, p2 = hier.tree_of(rs.gaussians)
    hier.check_tree(l2, p2)  # still a valid forest
    inside = (a["means"] <= torch.tensor([0.0, 9, 9])).all(dim=1)
    keep = ~hier.descendants_mask(level, parent, ~inside)  # by hand: a node stays iff it and its ancestors are inside
    assert len(rs.gaussians) == int(keep.sum()) and 0 < int(keep.sum()) < len(g)
    # the kept nodes resolve to the same absolute Gaussians as before
    torch.testing.assert_close(hier.resolve(rs.gaussians)["means"], a["means"][keep], atol=1e-6, rtol=0)


def test_a_scene_saved_with_a_cut_opens_at_that_cut(make_app):
    g = hier_scene()
    g.method = MethodSpec("hierarchical", {"level": 1})
    app = make_app(g)
    assert app.gui_cut.value == "Level 1" and app.detail.level == 1
    cam = camera(3.0)
    assert app.render_set.drawn_count(cam, W, H) == 25 * 4
    with pytest.raises(ValueError, match="no temporal scene"):
        app.step_frame(1)
