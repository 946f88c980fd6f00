"""`splatlab view` (viser app) in headless Chromium: browser splats, server renders, GUI-driven changes."""
from __future__ import annotations

import time

import numpy as np
import pytest

from splatlab.io import write_splats
from splatlab.view.headless import HeadlessChromium, find_chromium
from splatlab.view.testing import check_scene_drawn, drawn_fraction, textured_sphere

viser = pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")
pytestmark = pytest.mark.browser

W, H = 800, 600
PANEL_W, NOTE_H = 340, 200  # viser's control panel (right) and software-WebGL notification (top left)


def crop(img: np.ndarray) -> np.ndarray:
    """The part of the canvas not covered by viser's GUI."""
    return img[NOTE_H:, : img.shape[1] - PANEL_W]


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from splatlab.view.app import ViewerApp
    from splatlab.view.source import open_source

    d = tmp_path_factory.mktemp("viser_scene")
    write_splats(d / "sphere.ply", textured_sphere(1500))
    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    app = ViewerApp(server, open_source(str(d / "sphere.ply")), out_dir=str(d / "out"), max_resolution=800)
    browser = HeadlessChromium(W, H)
    try:
        browser.goto(f"http://127.0.0.1:{server.get_port()}")
        deadline = time.time() + 60
        while app.client_camera() is None and time.time() < deadline:
            time.sleep(0.25)
        assert app.client_camera() is not None, "the browser never connected to the viser server"
        yield app, browser
    finally:
        browser.close()
        app.stop()
        server.stop()


def reference(app) -> np.ndarray:
    from splatlab.view.render import render_image, to_uint8

    cam = app.client_camera()
    return to_uint8(render_image(app.render_set, cam, W, H, "RGB", app.background))


def wait_for_shot(browser, predicate, timeout: float = 90.0) -> np.ndarray:
    deadline = time.time() + timeout
    while True:
        shot = browser.screenshot()
        if predicate(shot) or time.time() > deadline:
            return shot
        time.sleep(0.5)


def shows_scene(shot: np.ndarray, background=(0, 0, 0)) -> bool:
    """Background applied (bottom-left corner) and splats on top of it."""
    corner = crop(shot)[-10:, :10]
    return drawn_fraction(corner, background) < 0.05 and drawn_fraction(crop(shot), background) > 0.3


def test_browser_splats_are_drawn_like_splatlab_renders(viewer):
    app, browser = viewer
    shot = wait_for_shot(browser, shows_scene)
    assert shot.shape == (H, W, 3)
    stats = check_scene_drawn(crop(shot), crop(reference(app)), (0, 0, 0), min_corr=0.85, max_mean_diff=20)
    assert stats["drawn"] > 0.3


def test_background_colour_from_gui_changes_the_image(viewer):
    app, browser = viewer
    before = browser.screenshot()
    app.set_background((0.0, 0.0, 1.0))
    try:
        shot = wait_for_shot(browser, lambda s: crop(s)[-20:, :20].reshape(-1, 3).mean(0)[2] > 200, timeout=60)
        corner = crop(shot)[-20:, :20].reshape(-1, 3).mean(0)
        assert corner[2] > 200 and corner[0] < 40, corner
        assert np.abs(shot.astype(int) - before.astype(int)).mean() > 5
    finally:
        app.set_background((0.0, 0.0, 0.0))


def test_server_render_modes_and_opacity_filter(viewer):
    from splatlab.view.app import DISPLAY_BROWSER, DISPLAY_SERVER

    app, browser = viewer
    frames0 = app.client_stats()[0]["frames"]
    app.set_display(DISPLAY_SERVER, "RGB")
    try:
        deadline = time.time() + 60
        while app.client_stats()[0]["frames"] < frames0 + 1 and time.time() < deadline:
            time.sleep(0.2)
        assert app.client_stats()[0]["frames"] > frames0, f"no server render reached the client ({app.render_error})"
        time.sleep(1.0)  # full-resolution pass after the camera rested
        shot = wait_for_shot(browser, shows_scene, timeout=30)
        check_scene_drawn(crop(shot), crop(reference(app)), (0, 0, 0), min_corr=0.9, max_mean_diff=15)

        app.set_display(DISPLAY_SERVER, "Gaussian count")
        heat = wait_for_shot(browser, lambda s: np.abs(s.astype(int) - shot.astype(int)).mean() > 5, timeout=30)
        assert np.abs(heat.astype(int) - shot.astype(int)).mean() > 5, "render mode change did not change the image"

        app.set_display(DISPLAY_SERVER, "RGB")
        app.set_filter(min_opacity=0.99)  # every splat has opacity 0.95 -> nothing left
        empty = wait_for_shot(browser, lambda s: drawn_fraction(crop(s), (0, 0, 0)) < 0.01, timeout=30)
        assert drawn_fraction(crop(empty), (0, 0, 0)) < 0.01
        assert app.render_set.total == 1500 and len(app.render_set) == 0
        with pytest.raises(AssertionError, match="not drawn"):
            check_scene_drawn(crop(empty), crop(shot), (0, 0, 0))  # the check fails on an empty canvas
    finally:
        app.set_filter(min_opacity=0.0)
        app.set_display(DISPLAY_BROWSER)


def test_screenshot_button_writes_png(viewer, tmp_path):
    from PIL import Image

    app, _ = viewer
    path = app.screenshot(path=str(tmp_path / "shot.png"))
    img = np.asarray(Image.open(path))
    assert img.shape[2] == 3 and drawn_fraction(img, app.background) > 0.2
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]  # atomic: no temp file left behind
