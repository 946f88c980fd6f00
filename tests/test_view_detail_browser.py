"""In headless Chromium: moving the viewer's time slider changes the picture the browser shows to
that moment's render (`splatlab render --time`'s render path), and the LOD control changes the count
and the picture of a hierarchical scene."""
from __future__ import annotations

import time

import numpy as np
import pytest

from splatlab.view.headless import HeadlessChromium, find_chromium
from splatlab.view.testing import correlation

viser = pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")
pytestmark = pytest.mark.browser

W, H = 640, 480
PANEL_W, NOTE_H = 340, 200  # viser's control panel (right) and software-WebGL notification (top left)


def crop(img: np.ndarray) -> np.ndarray:
    return img[NOTE_H:, : img.shape[1] - PANEL_W]


def open_in_browser(g, tmp_path):
    from splatlab.view.app import DISPLAY_SERVER, ViewerApp
    from splatlab.view.source import ViewSource

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    app = ViewerApp(server, ViewSource(g, "scene", "", 0, "memory"), out_dir=str(tmp_path), display=DISPLAY_SERVER,
                    max_resolution=W)
    browser = HeadlessChromium(W, H)
    browser.goto(f"http://127.0.0.1:{server.get_port()}")
    deadline = time.time() + 90
    while app.client_camera() is None and time.time() < deadline:
        time.sleep(0.25)
    assert app.client_camera() is not None, "the browser never connected"
    return app, server, browser


def settled_shot(app, browser, frames_before: int, timeout: float = 120.0) -> np.ndarray:
    """A screenshot once the full-resolution server render of the current state has reached the
    browser and the page has stopped changing."""
    deadline = time.time() + timeout
    while not (app.client_stats()[0]["frames"] > frames_before and app.settled()) and time.time() < deadline:
        time.sleep(0.2)
    assert app.settled(), f"no full render reached the browser ({app.render_error})"
    shot = browser.screenshot()
    while time.time() < deadline:
        time.sleep(0.5)
        again = browser.screenshot()
        if np.array_equal(again, shot):
            return shot
        shot = again
    return shot


def reference(app, t=None, g=None) -> np.ndarray:
    """The render path called directly for the browser's camera (at moment t)."""
    import torch

    from splatlab.cameras import Cameras
    from splatlab.render import render
    from splatlab.view.render import to_uint8

    cam = app.client_camera()
    w, h = cam.size_for(W)
    g = app.render_set.gaussians if g is None else g
    with torch.no_grad():
        img = render(g, Cameras(cam.viewmat()[None], cam.K(w, h)[None], w, h,
                                times=None if t is None else torch.tensor([float(t)])),
                     background=torch.zeros(3)).images[0].clamp(0, 1).numpy()
    from PIL import Image
    return np.asarray(Image.fromarray(to_uint8(img)).resize((W, H), Image.BILINEAR))


def test_time_slider_in_the_browser(tmp_path):
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from test_view_detail import temporal_scene

    g = temporal_scene()
    app, server, browser = open_in_browser(g, tmp_path)
    try:
        shots = {}
        for t in (0.4, 1.5):
            frames = app.client_stats()[0]["frames"]
            app.set_time(t)
            shots[t] = settled_shot(app, browser, frames)
        refs = {t: reference(app, t) for t in shots}
        assert np.abs(crop(refs[0.4]).astype(int) - crop(refs[1.5]).astype(int)).mean() > 1.0
        for t, other in ((0.4, 1.5), (1.5, 0.4)):
            same, wrong = correlation(crop(shots[t]), crop(refs[t])), correlation(crop(shots[t]), crop(refs[other]))
            assert same > 0.9 and same > wrong, (t, same, wrong)
        assert "t = 1.500 s" in app._detail_md.content and "Gaussians drawn:" in app._detail_md.content
    finally:
        browser.close()
        app.stop()
        server.stop()


def test_lod_control_in_the_browser(tmp_path):
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    from test_view_detail import hier_scene

    app, server, browser = open_in_browser(hier_scene(), tmp_path)
    try:
        frames = app.client_stats()[0]["frames"]
        app.set_level(-1)
        app._settings_changed()
        fine = settled_shot(app, browser, frames)
        n_fine = app.last_drawn
        frames = app.client_stats()[0]["frames"]
        app.set_lod(100.0)  # coarse: subtrees stop refining below 100 px
        coarse = settled_shot(app, browser, frames)
        n_coarse = app.last_drawn
        assert n_coarse < n_fine, (n_coarse, n_fine)
        assert np.abs(crop(coarse).astype(int) - crop(fine).astype(int)).mean() > 0.5
        assert correlation(crop(coarse), crop(reference(app))) > 0.9
    finally:
        browser.close()
        app.stop()
        server.stop()
