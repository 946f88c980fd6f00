"""The one "fit the scene" camera (splatlab/framing.py) and the three pictures that open with it:
`splatlab render`'s orbit, viser's initial camera and the static viewer's URL camera."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatlab.cameras import Cameras, look_at
from splatlab.framing import (SceneBox, fit_camera, fit_distance, fit_orbit, fit_view, scene_box, view_direction,
                              weighted_quantile)
from splatlab.render import render
from splatlab.view.testing import frame_stats, tall_object_with_strays


def _object_alpha(g, n_object: int, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int) -> np.ndarray:
    """(C, H, W) alpha of the object alone (the strays that steered the camera are left out)."""
    obj = g.subset(torch.arange(n_object))
    with torch.no_grad():
        out = render(obj, Cameras(viewmats, Ks, width, height))
    return out.alphas[..., 0].numpy()


def test_weighted_quantile_equals_the_quantile_of_repeated_values():
    rng = np.random.default_rng(0)
    values = rng.normal(size=40)
    counts = rng.integers(1, 6, size=40)
    repeated = np.repeat(values, counts)
    for q in (0.0, 0.02, 0.3, 0.5, 0.98, 1.0):
        expect = np.quantile(repeated, q, method="inverted_cdf")
        assert weighted_quantile(values, counts.astype(float), q) == pytest.approx(expect), q
    both = weighted_quantile(values, counts.astype(float), [0.02, 0.98])
    assert np.allclose(both, np.quantile(repeated, [0.02, 0.98], method="inverted_cdf"))


def _ndc(points: np.ndarray, eye: np.ndarray, target: np.ndarray, fov_y: float, aspect: float):
    """Pinhole projection through cameras.look_at (the render path's convention): (x, y) in units of
    the half-frame, and depth."""
    vm = look_at(torch.tensor(eye), torch.tensor(target)).double().numpy()
    cam = points @ vm[:3, :3].T + vm[:3, 3]
    t = math.tan(fov_y / 2)
    return cam[:, 0] / cam[:, 2] / (t * aspect), cam[:, 1] / cam[:, 2] / t, cam[:, 2]


def _random_case(rng):
    pts = rng.normal(size=(int(rng.integers(1, 40)), 3)) * rng.uniform(0.1, 2.0, size=3) + rng.normal(size=3)
    lo, hi = pts.min(0), pts.max(0)
    box = SceneBox(lo, hi, len(pts), len(pts), pts, np.zeros(len(pts)))
    direction = view_direction(rng.uniform(-80, 80), rng.uniform(0, 360))
    return box, direction, math.radians(rng.uniform(20, 90)), rng.uniform(0.5, 2.0), rng.uniform(0.0, 0.3)


def test_fit_distance_puts_the_outermost_point_on_the_margin():
    """Projected with cameras.look_at + a pinhole: every point in front of the camera and inside the
    frame shrunk by the margin, the outermost exactly on it (the distance is the smallest)."""
    rng = np.random.default_rng(1)
    for trial in range(40):
        box, direction, fov_y, aspect, margin = _random_case(rng)
        target = box.center + rng.normal(size=3) * 0.1 * np.linalg.norm(box.size)
        d = fit_distance(box, direction, fov_y, aspect, margin, target)
        x, y, z = _ndc(box.points, target + d * direction, target, fov_y, aspect)
        if len(box.points) > 1 or d > 1e-3:  # a single point at the target needs no distance at all
            assert (z > 0).all(), trial
            assert max(np.abs(x).max(), np.abs(y).max()) == pytest.approx(1 - margin, abs=1e-5), trial  # float32 camera matrices


def test_fit_view_centres_the_points_and_is_as_close_as_possible():
    """fit_view: on the limiting image axis the points touch both margins (-x_min = x_max = 1 - margin:
    centred and as close as possible), on the other they are inside them."""
    rng = np.random.default_rng(2)
    for trial in range(40):
        box, direction, fov_y, aspect, margin = _random_case(rng)
        if len(box.points) < 3:
            continue
        target, d = fit_view(box, direction, fov_y, aspect, margin)
        x, y, z = _ndc(box.points, target + d * direction, target, fov_y, aspect)
        assert (z > 0).all(), trial
        tight, other = (x, y) if x.max() - x.min() > y.max() - y.min() else (y, x)
        assert tight.max() == pytest.approx(1 - margin, abs=1e-6) and tight.min() == pytest.approx(-(1 - margin), abs=1e-6)
        assert np.abs(other).max() <= 1 - margin + 1e-9, trial


def test_fit_view_keeps_whole_balls_in_frame():
    """Balls (Gaussian extents): sampled points on every sphere project inside the shrunk frame, and
    some sphere reaches the margin (within the sampling's resolution)."""
    rng = np.random.default_rng(3)
    dirs = rng.normal(size=(2000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    for trial in range(10):
        box, direction, fov_y, aspect, margin = _random_case(rng)
        radii = rng.uniform(0.0, 0.3, size=len(box.points))
        box = SceneBox(box.lo, box.hi, box.kept, box.total, box.points, radii)
        target, d = fit_view(box, direction, fov_y, aspect, margin)
        surface = (box.points[:, None, :] + radii[:, None, None] * dirs[None]).reshape(-1, 3)
        x, y, z = _ndc(surface, target + d * direction, target, fov_y, aspect)
        worst = max(np.abs(x).max(), np.abs(y).max())
        assert (z > 0).all() and worst <= 1 - margin + 1e-9, (trial, worst)
        assert worst > 1 - margin - 0.01, (trial, worst)


def test_scene_box_ignores_strays_and_keeps_the_antenna():
    g, n_object = tall_object_with_strays()
    box = scene_box(g)
    # the object: body x in [-0.4, 0.4], y in [-0.3, 0.3], z from 0 to the antenna tip at 2.2, splats 0.04 wide
    assert np.all(box.lo <= np.array([-0.4, -0.3, 0.0])) and np.all(box.hi >= np.array([0.4, 0.3, 2.2]))
    assert np.all(box.lo >= np.array([-0.6, -0.5, -0.2])) and np.all(box.hi <= np.array([0.6, 0.5, 2.4]))
    assert box.kept == n_object and box.total == len(g)
    # the plain min/max bounds are what strays make of them: 30x larger
    lo, hi = (b.numpy() for b in g.bounds())
    assert np.linalg.norm(hi - lo) > 10 * np.linalg.norm(box.size)


def test_scene_box_from_a_quantile_sample_of_a_large_scene(monkeypatch):
    """Large scenes take the core quantiles from a fixed sample (here 300 of 1148 splats): the box is the same."""
    import splatlab.framing as framing

    g, _ = tall_object_with_strays()
    full = scene_box(g)
    monkeypatch.setattr(framing, "QUANTILE_SAMPLE", 300)
    sampled = scene_box(g)
    assert np.allclose(sampled.lo, full.lo) and np.allclose(sampled.hi, full.hi) and sampled.kept == full.kept


def test_scene_box_keeps_parts_made_of_coarser_splats():
    """The detail weighting (opacity / scale^2) must not drop an object part drawn with larger splats:
    a body of 0.08 splats under a head of 0.02 ones (4x) keeps the body's bottom (z = 0)."""
    from splatlab.gaussians import Gaussians

    gen = torch.Generator().manual_seed(0)
    body = torch.rand(600, 3, generator=gen) * torch.tensor([0.8, 0.6, 1.2]) - torch.tensor([0.4, 0.3, 0.0])
    v = torch.randn(300, 3, generator=gen)
    head = 0.3 * v / v.norm(dim=1, keepdim=True) + torch.tensor([0.0, 0.0, 1.5])
    g = Gaussians.concat([
        Gaussians.from_points(body, torch.rand(600, 3, generator=gen), torch.full((600,), 0.08), opacity=0.9, sh_degree=0),
        Gaussians.from_points(head, torch.rand(300, 3, generator=gen), torch.full((300,), 0.02), opacity=0.9, sh_degree=0)])
    box = scene_box(g)
    assert box.lo[2] <= body[:, 2].min().item() and box.hi[2] >= head[:, 2].max().item(), (box.lo, box.hi)
    assert box.kept == 900


def test_scene_box_of_an_empty_or_transparent_scene_is_finite():
    from splatlab.gaussians import Gaussians

    faint = Gaussians.from_points(torch.tensor([[1.0, 2.0, 3.0]]), torch.ones(1, 3), torch.full((1,), 0.1),
                                  opacity=0.01, sh_degree=0)
    empty = faint.subset(torch.zeros(1, dtype=torch.bool))
    far = Gaussians.from_points(torch.full((5, 3), 1e20), torch.ones(5, 3), torch.full((5,), 0.1), opacity=0.9,
                                sh_degree=0)
    broken = Gaussians.from_points(torch.tensor([[math.nan] * 3, [math.inf] * 3, [0.0, 0.0, 0.0]]), torch.ones(3, 3),
                                   torch.tensor([0.1, 1e30, 1e-30]), opacity=0.9, sh_degree=0)
    for g in (empty, faint, far, broken):
        cam = fit_camera(g)
        assert np.isfinite(cam.eye).all() and cam.distance > 0
        viewmats, _, _ = fit_orbit(g, 2, 16, 16)  # float32 cameras that can be inverted
        assert torch.isfinite(viewmats).all()
    assert np.allclose(fit_camera(faint).target, [1.0, 2.0, 3.0], atol=0.3)


@pytest.mark.parametrize("width,height", [(64, 64), (80, 48)])
def test_render_orbit_has_the_whole_object_in_frame(width, height):
    """`splatlab render`'s cameras (auto_orbit) on a scene with far strays: in every orbit view the
    object's alpha stays off the image border and its bounding box spans most of the frame."""
    from splatlab.render.cli import auto_orbit

    g, n_object = tall_object_with_strays()
    viewmats, Ks = auto_orbit(g, 6, width, height)
    for view, alpha in enumerate(_object_alpha(g, n_object, viewmats, Ks, width, height)):
        stats = frame_stats(alpha)
        assert not stats["touches_border"], (view, stats)
        assert stats["span"] > 0.6, (view, stats)


def test_render_cli_writes_the_fitted_turntable(tmp_path):
    """The CLI end to end on a file: the object on a black background, off the border, large."""
    from PIL import Image

    from splatlab.io import write_splats
    from splatlab.render.cli import render_main

    g, n_object = tall_object_with_strays(strays=False)
    write_splats(tmp_path / "obj.ply", g)
    assert render_main([str(tmp_path / "obj.ply"), "--out", str(tmp_path / "t.png"), "--views", "2",
                        "--width", "64", "--height", "64"]) == 0
    for i in range(2):
        img = np.asarray(Image.open(tmp_path / f"t_{i:03d}.png"), dtype=np.float64) / 255.0
        stats = frame_stats(img.max(-1), threshold=0.05, edge_threshold=0.02)
        assert not stats["touches_border"] and stats["span"] > 0.6, (i, stats)


def _app(sources):
    viser = pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")
    from splatlab.view.app import ViewerApp

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        return server, ViewerApp(server, sources)
    except BaseException:
        server.stop()
        raise


def _source(g, n_cameras: int = 0):
    from splatlab.view.source import ViewSource

    cams = None
    if n_cameras:
        eyes = [view_direction(10, 360 * i / n_cameras) * 4 for i in range(n_cameras)]
        vm = torch.stack([look_at(torch.tensor(e), torch.zeros(3)) for e in eyes])
        K = torch.tensor([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
        cams = Cameras(vm, K[None].expand(n_cameras, 3, 3).clone(), 64, 48)
    return ViewSource(g, "test", "", 0, "memory", cameras=cams)


def test_viser_opens_on_the_fit_camera_with_the_object_in_frame():
    """viser's initial camera is `fit_camera` of the scene; a 4:3 window from it shows the whole object."""
    from splatlab.view.render import look_at_camera

    g, n_object = tall_object_with_strays()
    server, app = _app([_source(g)])
    try:
        ic = server.initial_camera
        fit = fit_camera(g)
        assert np.allclose(ic.position, fit.eye, atol=1e-6) and np.allclose(ic.look_at, fit.target, atol=1e-6)
        assert ic.fov == pytest.approx(fit.fov_y)
        for w, h in ((64, 48), (48, 48)):  # a landscape window and the square one the fit is made for
            cam = look_at_camera(ic.position, ic.look_at, ic.fov, w / h)
            alpha = _object_alpha(g, n_object, cam.viewmat()[None], cam.K(w, h)[None], w, h)[0]
            stats = frame_stats(alpha)
            assert not stats["touches_border"] and stats["span_y"] > 0.6, (w, h, stats)
    finally:
        app.stop()
        server.stop()


def test_many_dataset_frustums_start_hidden_and_the_checkbox_shows_them():
    from splatlab.view.app import SHOW_CAMERAS_UP_TO
    from splatlab.view.testing import textured_sphere

    for n, shown in ((SHOW_CAMERAS_UP_TO, True), (SHOW_CAMERAS_UP_TO + 1, False), (125, False)):
        server, app = _app([_source(textured_sphere(200), n)])
        try:
            frustums = app.dataset_frustums()
            assert len(frustums) == n
            assert all(h.visible == shown for _, h in frustums), n
            assert app.gui_show_cams.value == shown
            app.gui_show_cams.value = True
            app._show_frustums()
            assert all(h.visible for _, h in frustums), n
        finally:
            app.stop()
            server.stop()


def test_static_viewer_url_carries_the_same_fit_camera(tmp_path):
    """What `splatlab view --static` serves: the page URL's pos/target/fov are `fit_camera` of the file,
    the camera viser opens with (the static page itself is checked in headless Chromium in
    tests/test_view_static.py)."""
    from splatlab.io import write_splats
    from splatlab.view.cli import static_server_for
    from splatlab.view.source import read_splat_file
    from splatlab.view.static_server import find_dist, parse_camera_query

    if find_dist() is None:
        pytest.skip("viewer/dist not built")
    g, _ = tall_object_with_strays()
    write_splats(tmp_path / "scene.ply", g)
    src = read_splat_file(str(tmp_path / "scene.ply"))
    srv = static_server_for(src, str(tmp_path / "scene.ply"), "127.0.0.1", 0)
    try:
        got = parse_camera_query(srv.url)
    finally:
        srv.httpd.server_close()
    server, app = _app([src])
    try:
        ic = server.initial_camera
        assert np.allclose(got["pos"], ic.position, atol=1e-4) and np.allclose(got["target"], ic.look_at, atol=1e-4)
        assert got["fov"][0] == pytest.approx(math.degrees(ic.fov), abs=1e-4)
    finally:
        app.stop()
        server.stop()


@pytest.mark.browser
def test_viser_page_in_a_browser_opens_on_the_fit_camera():
    """A real viser page (headless Chromium, 800x600): the camera the browser reports is the fitted one,
    and splatlab's render from exactly that camera (the browser's own aspect) has the object in frame."""
    pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")
    import time

    from splatlab.view.headless import HeadlessChromium, find_chromium

    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    g, n_object = tall_object_with_strays()
    server, app = _app([_source(g)])
    fit = fit_camera(g)
    browser = HeadlessChromium(800, 600)
    try:
        browser.goto(f"http://127.0.0.1:{server.get_port()}")
        deadline, cam = time.time() + 60, None
        while time.time() < deadline:  # the page reports viser's default camera first, then the initial one
            cam = app.client_camera()
            if cam is not None and np.abs(np.asarray(cam.position) - fit.eye).max() < 1e-3:
                break
            time.sleep(0.25)
        assert cam is not None and np.abs(np.asarray(cam.position) - fit.eye).max() < 1e-3, cam
        assert cam.fov_y == pytest.approx(fit.fov_y, abs=1e-4)
        w, h = cam.size_for(96)
        alpha = _object_alpha(g, n_object, cam.viewmat()[None], cam.K(w, h)[None], w, h)[0]
        stats = frame_stats(alpha)
        assert not stats["touches_border"] and stats["span_y"] > 0.6, (cam, stats)
    finally:
        app.stop()  # first: nothing is sent to a page that is going away
        browser.close()
        server.stop()
