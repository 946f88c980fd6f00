"""Static web viewer (viewer/dist, Spark + three.js) in headless Chromium, served by `splatlab view --static`'s server."""
from __future__ import annotations

import math
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from splatlab.io import write_splats
from splatlab.view.headless import HeadlessChromium, find_chromium
from splatlab.view.render import RenderSet, look_at_camera, render_image, to_uint8
from splatlab.view.static_server import StaticViewerServer, find_dist
from splatlab.view.testing import check_scene_drawn, textured_sphere

W, H = 480, 360
CAMERA = "&ui=0&pos=2.6,0,1.2&target=0,0,0&fov=50"
needs_dist = pytest.mark.skipif(find_dist() is None, reason="viewer/dist not built (cd viewer && npm ci && npm run build)")
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (apt-get install chromium)")
pytestmark = pytest.mark.browser  # register in pyproject: markers = ["browser: needs headless chromium"]


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("static_scene")
    g = textured_sphere(1500)
    files = {}
    for name in ("sphere.ply", "sphere.compressed.ply", "sphere.sog", "sphere.spz"):
        write_splats(d / name, g)
        files[name] = d / name
    (d / "empty.ply").write_bytes(b"")
    (d / "broken.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n")
    files["empty.ply"], files["broken.ply"] = d / "empty.ply", d / "broken.ply"
    files["secret.txt"] = d / "secret.txt"
    files["secret.txt"].write_text("not to be served")
    reference = to_uint8(render_image(RenderSet.build(g), look_at_camera((2.6, 0, 1.2), (0, 0, 0), math.radians(50), W / H),
                                      W, H))
    return files, reference


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    with HeadlessChromium(W, H) as b:
        yield b


def _open(browser, path: Path, extra: str = CAMERA) -> str:
    srv = StaticViewerServer(path).start()
    try:
        browser.goto(srv.url + extra)
        state = browser.wait_for("['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
                                 timeout=90)
        if state == "ready":  # let Spark sort and draw a few frames
            browser.wait_for("window.splatlab.frames > 5", timeout=30)
        return state
    finally:
        srv.stop()


@pytest.mark.parametrize("name", ["sphere.ply", "sphere.compressed.ply", "sphere.sog", "sphere.spz"])
@needs_dist
@needs_chromium
def test_static_viewer_draws_each_format(browser, scene_files, name):
    files, reference = scene_files
    assert _open(browser, files[name]) == "ready", browser.evaluate("window.splatlab.error")
    assert browser.evaluate("window.splatlab.numSplats") == 1500
    shot = browser.screenshot()
    stats = check_scene_drawn(shot, reference, (0, 0, 0), min_corr=0.9, max_mean_diff=12)
    assert stats["drawn"] > 0.2


@needs_dist
@needs_chromium
def test_static_viewer_background_parameter_changes_image(browser, scene_files):
    files, _ = scene_files
    assert _open(browser, files["sphere.ply"], CAMERA + "&bg=0000ff") == "ready"
    shot = browser.screenshot()
    corner = shot[:20, :20].reshape(-1, 3).mean(0)
    assert corner[2] > 200 and corner[0] < 40, corner


@pytest.mark.parametrize("name,message", [("empty.ply", "empty file"), ("broken.ply", "cannot read splat file")])
@needs_dist
@needs_chromium
def test_static_viewer_reports_bad_file(browser, scene_files, name, message):
    files, reference = scene_files
    assert _open(browser, files[name]) == "error"
    text = browser.evaluate("document.getElementById('error').textContent")
    assert name in text and message in text and "\n" not in text
    assert browser.evaluate("getComputedStyle(document.getElementById('error')).display") != "none"
    # ... and the drawn-scene assertion fails on what the page shows (no splats, only the error box)
    browser.evaluate("document.getElementById('error').hidden = true")
    with pytest.raises(AssertionError, match="not drawn|does not match"):
        check_scene_drawn(browser.screenshot(), reference, (0, 0, 0))


def test_drawn_check_fails_on_blank_screenshot(scene_files):
    _, reference = scene_files
    blank = np.zeros_like(reference)
    with pytest.raises(AssertionError, match="not drawn"):
        check_scene_drawn(blank, reference, (0, 0, 0))
    shifted = np.roll(reference, reference.shape[1] // 3, axis=1)  # drawn, but not the same picture
    with pytest.raises(AssertionError):
        check_scene_drawn(shifted, reference, (0, 0, 0), min_corr=0.9)
    check_scene_drawn(reference, reference, (0, 0, 0))


@needs_dist
def test_static_server_serves_only_the_viewer_and_one_file(scene_files):
    files, _ = scene_files
    srv = StaticViewerServer(files["sphere.ply"]).start()
    base = f"http://{srv.host}:{srv.port}"

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    try:
        assert srv.host == "127.0.0.1"
        assert status("/") == 200 and status("/index.html") == 200 and status("/assets/viewer.js") == 200
        assert status("/scene/sphere.ply") == 200
        with urllib.request.urlopen(base + "/scene/sphere.ply", timeout=10) as r:
            assert r.read() == files["sphere.ply"].read_bytes()
        for bad in ("/scene/secret.txt", "/scene/../secret.txt", "/scene/%2e%2e/secret.txt", "/../secret.txt",
                    "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "/scene/", "/assets/", "/assets/../../package.json",
                    "//etc/passwd", "/scene/sphere.sog", "/index.html/..", "/viewer/dist/index.html"):
            assert status(bad) == 404, bad
    finally:
        srv.stop()


@needs_dist
@needs_chromium
def test_static_viewer_opens_with_the_whole_object_in_frame(browser, tmp_path):
    """`splatlab view --static`'s server (no camera given by hand) on a scene with far stray splats:
    the page opens on the fitted camera, and the object (the largest blob of non-background pixels;
    the strays the page also draws are specks) stays off the border while spanning most of the frame.
    Without the fitted camera the page frames the strays' bounds and the object spans ~5% of it."""
    from scipy import ndimage

    from splatlab.view.cli import static_server_for
    from splatlab.view.source import read_splat_file
    from splatlab.view.testing import frame_stats, tall_object_with_strays

    g, _ = tall_object_with_strays()
    write_splats(tmp_path / "tall.ply", g)
    src = read_splat_file(str(tmp_path / "tall.ply"))
    srv = static_server_for(src, str(tmp_path / "tall.ply"), "127.0.0.1", 0).start()
    try:
        browser.goto(srv.url + "&ui=0&bg=ff00ff")
        state = browser.wait_for("['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
                                 timeout=90)
        assert state == "ready", browser.evaluate("window.splatlab.error")
        browser.wait_for("window.splatlab.frames > 5", timeout=30)
        shot = browser.screenshot().astype(np.float64)
    finally:
        srv.stop()
    coverage = np.abs(shot - np.array([255.0, 0.0, 255.0])).max(-1) / 255.0  # distance from the background
    labels, n = ndimage.label(coverage > 0.15)
    assert n > 0, "nothing drawn"
    biggest = np.bincount(labels.ravel())[1:].argmax() + 1
    stats = frame_stats(np.where(labels == biggest, coverage, 0.0), threshold=0.3, edge_threshold=0.15)
    assert not stats["touches_border"], stats
    assert stats["span_y"] > 0.6, stats
