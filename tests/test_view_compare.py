"""`splatlab view` in headless Chromium: dataset-camera thumbnails + click-to-view, and several runs side by side."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.gaussians import Gaussians
from splatlab.io import write_splats
from splatlab.view.headless import HeadlessChromium, find_chromium
from splatlab.view.render import RenderSet, ViewCamera, quat_wxyz_to_matrix, render_image, to_uint8
from splatlab.view.testing import correlation, drawn_fraction, textured_sphere

viser = pytest.importorskip("viser", reason="viser not installed (pip install viser==1.1.1)")
pytestmark = pytest.mark.browser

PANEL_W, NOTE_H = 340, 200  # viser's control panel (right) and software-WebGL notification (top left)
IMG_W, IMG_H = 160, 120  # dataset image size (thumbnails: 64 x 48)
ANGLE_X = 0.69


def _needs_chromium() -> None:
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")


def _gl_look_at(eye, target=np.zeros(3), up=np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, np.cross(back, right), back, eye
    return m


def _view_image(i: int) -> np.ndarray:
    """A distinct picture per view: a gradient in one channel and a bright square that moves with i."""
    img = np.zeros((IMG_H, IMG_W, 3), np.uint8)
    img[..., i % 3] = np.linspace(40, 230, IMG_W).astype(np.uint8)[None, :]
    x0 = 10 + 22 * i
    img[30:80, x0:x0 + 30] = (255, 255, 255)
    return img


def _make_run(root, n_views: int = 6):
    """A Blender-layout dataset with `n_views` cameras around the origin and a run folder trained on it."""
    data = root / "scene"
    (data / "train").mkdir(parents=True)
    frames = []
    for i in range(n_views):
        ang = 2 * math.pi * i / n_views
        eye = np.array([4.0 * math.cos(ang), 4.0 * math.sin(ang), 1.0 + 0.2 * i])
        Image.fromarray(_view_image(i)).save(data / "train" / f"r_{i}.png")
        c2w = _gl_look_at(eye)
        roll = 0.12 * i  # hand-held cameras are rolled: the click must reproduce the roll too
        c2w[:3, :2] = c2w[:3, :2] @ np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    (data / "transforms_train.json").write_text(json.dumps({"camera_angle_x": ANGLE_X, "frames": frames}))
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    g = textured_sphere(600)
    from splatlab.checkpoint_file import encode_checkpoint
    torch.save(encode_checkpoint({"step": 10, "params": {k: v.detach() for k, v in g.params.items()}, "config": {"scene": str(data)}}),
               run / "checkpoints" / "step_0000010.pt")
    (run / "metrics.json").write_text("{}")
    return run, data


class _Viewer:
    """A viser server + ViewerApp + one headless Chromium client (closed by `close()`)."""

    def __init__(self, sources, width: int, height: int, **app_kwargs) -> None:
        from splatlab.view.app import ViewerApp

        self.server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
        self.app = ViewerApp(self.server, sources, **app_kwargs)
        self.browser = None
        try:
            self.browser = HeadlessChromium(width, height)
            self.browser.goto(f"http://127.0.0.1:{self.server.get_port()}")
            deadline = time.time() + 30
            while self.app.client_camera() is None and time.time() < deadline:
                time.sleep(0.25)
            assert self.app.client_camera() is not None, "the browser never connected to the viser server"
            self.client = next(iter(self.server.get_clients().values()))
            # the page reports viser's default camera first; wait until it has applied the app's initial view
            home = np.asarray(self.app._home[0])
            while np.abs(np.asarray(self.client.camera.position) - home).max() > 1e-3 and time.time() < deadline:
                time.sleep(0.1)
            assert np.abs(np.asarray(self.client.camera.position) - home).max() < 1e-3, "initial camera not applied"
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.app.stop()  # first: no render is sent to a page that is going away
        if self.browser is not None:
            self.browser.close()
        self.server.stop()


def _rotation_error(wxyz_a, wxyz_b) -> float:
    return float(np.abs(quat_wxyz_to_matrix(wxyz_a) - quat_wxyz_to_matrix(wxyz_b)).max())


def test_run_cameras_have_thumbnails_and_a_click_moves_the_camera(tmp_path):
    _needs_chromium()
    from splatlab.data import load_scene
    from splatlab.view.source import open_source

    run, data = _make_run(tmp_path, n_views=6)
    source = open_source(str(run))
    assert source.cameras is not None and len(source.cameras) == 6, source.notes
    viewer = _Viewer(source, 640, 480, max_cameras=4, out_dir=str(tmp_path / "out"))
    try:
        app, client = viewer.app, viewer.client
        frustums = app.dataset_frustums()
        assert [i for i, _ in frustums] == [0, 2, 3, 5]  # capped at 4, evenly spaced, ends included

        # thumbnails: ~64 px copies of each camera's own image
        assert app.thumbnails_ready.wait(20), "thumbnails were never loaded"
        originals = {i: np.asarray(Image.fromarray(_view_image(i)).resize((64, 48), Image.BILINEAR), float)
                     for i in range(6)}
        for i, handle in frustums:
            thumb = handle.image
            assert thumb is not None and thumb.shape == (48, 64, 3) and thumb.dtype == np.uint8, i
            diffs = {j: np.abs(thumb.astype(float) - o).mean() for j, o in originals.items()}
            assert diffs[i] < 6 and min(d for j, d in diffs.items() if j != i) > 20, (i, diffs)

        # click on frustum 3 (through the handler registered on the viser node, as a browser click does)
        scene = load_scene(str(data))
        c2w = torch.linalg.inv(scene.train.cameras.viewmats[3].double()).numpy()
        want_fov = 2 * math.atan(IMG_H / (2 * float(scene.train.cameras.Ks[3][1, 1])))
        index, handle = frustums[2]
        assert index == 3
        callbacks = handle._impl.click_cb
        assert len(callbacks) == 1, "no click handler on the dataset-camera frustum"
        before = np.array(client.camera.position)
        assert np.abs(before - c2w[:3, 3]).max() > 0.5  # the camera starts elsewhere

        echoes = []
        client.camera.on_update(lambda cam: echoes.append((time.time(), np.array(cam.position),
                                                           np.array(cam.wxyz), float(cam.fov))))
        t_click = time.time()
        callbacks[0].callback(viser.SceneNodePointerEvent(
            client=client, client_id=client.client_id, event="click", target=handle, ray_origin=(0.0, 0.0, 0.0),
            ray_direction=(1.0, 0.0, 0.0), screen_pos=(0.5, 0.5), instance_index=None, modifier=None))

        # the browser applies the new pose (fov, position, orientation may arrive in separate reports)
        # and reports it back: wait for a report at the dataset camera, then check it stays there
        deadline = time.time() + 15
        while time.time() < deadline:
            after = [e for e in echoes if e[0] >= t_click]
            if after and np.abs(after[-1][1] - c2w[:3, 3]).max() < 1e-3 and abs(after[-1][3] - want_fov) < 1e-3:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        after = [e for e in echoes if e[0] >= t_click]
        assert after, "the browser never reported a camera after the click"
        _, pos, wxyz, fov = after[-1]
        for label, (p, q, f) in {"browser report": (pos, wxyz, fov),
                                 "server state": (np.array(client.camera.position), np.array(client.camera.wxyz),
                                                  float(client.camera.fov))}.items():
            assert np.abs(p - c2w[:3, 3]).max() < 1e-3, (label, p, c2w[:3, 3])
            assert _rotation_error(q, _wxyz(c2w)) < 1e-3, (label, q)
            assert abs(f - want_fov) < 1e-3, (label, f, want_fov)
    finally:
        viewer.close()


def _wxyz(c2w: np.ndarray) -> np.ndarray:
    from splatlab.view.render import matrix_to_quat_wxyz

    return matrix_to_quat_wxyz(c2w[:3, :3])


def _striped_blob(n: int = 1500) -> Gaussians:
    """Unlike `textured_sphere`: a flattened, off-centre ellipsoid with horizontal colour bands."""
    gen = torch.Generator().manual_seed(7)
    v = torch.randn(n, 3, generator=gen)
    v = v / v.norm(dim=1, keepdim=True)
    pts = v * torch.tensor([0.9, 0.9, 0.45]) + torch.tensor([0.0, 0.25, 0.1])
    band = (torch.floor((pts[:, 2] + 1) * 6) % 2)[:, None]
    col = band * torch.tensor([0.95, 0.85, 0.1]) + (1 - band) * torch.tensor([0.1, 0.3, 0.9])
    return Gaussians.from_points(pts, col, torch.full((n,), 0.07), opacity=0.95, sh_degree=0)


def test_two_files_side_by_side_in_server_renders(tmp_path):
    _needs_chromium()
    from splatlab.io import read_splats
    from splatlab.view.app import DISPLAY_SERVER
    from splatlab.view.source import open_sources

    W, H = 1200, 520
    write_splats(tmp_path / "sphere.ply", textured_sphere(1500))
    write_splats(tmp_path / "blob.ply", _striped_blob())
    paths = [str(tmp_path / "sphere.ply"), str(tmp_path / "blob.ply")]
    viewer = _Viewer(open_sources(paths), W, H, display=DISPLAY_SERVER, max_resolution=W,
                     out_dir=str(tmp_path / "out"))
    try:
        app, browser = viewer.app, viewer.browser
        assert app.labels == ["sphere.ply", "blob.ply"]
        app.set_side_by_side(True, compare=1)
        assert "sphere.ply" in app._side_md.content and "blob.ply" in app._side_md.content
        assert app.gui_display.value == DISPLAY_SERVER

        # splatlab's own render of each file, from the client's camera, into one half of the canvas
        cam = app.client_camera()
        half = ViewCamera(cam.wxyz, cam.position, cam.fov_y, (W / 2) / H)
        refs = [to_uint8(render_image(RenderSet.build(read_splats(p)), half, W // 2, H)) for p in paths]
        vis = W - PANEL_W - W // 2  # visible columns of the right half (the control panel covers the rest)

        def halves(shot):
            return shot[NOTE_H:, : W // 2 - 2], shot[NOTE_H:, W // 2 + 2: W // 2 + vis]

        def crop_refs(ref):
            return ref[NOTE_H:, : W // 2 - 2], ref[NOTE_H:, 2: vis]

        (ref_a_left, _), (ref_b_left, _) = crop_refs(refs[0]), crop_refs(refs[1])
        (_, ref_a_right), (_, ref_b_right) = crop_refs(refs[0]), crop_refs(refs[1])

        def ok(shot) -> bool:
            left, right = halves(shot)
            return correlation(left, ref_a_left) > 0.85 and correlation(right, ref_b_right) > 0.85

        deadline = time.time() + 25
        shot = browser.screenshot()
        while not ok(shot) and time.time() < deadline:
            time.sleep(0.5)
            shot = browser.screenshot()
        left, right = halves(shot)
        stats = {"L~A": correlation(left, ref_a_left), "L~B": correlation(left, ref_b_left),
                 "R~B": correlation(right, ref_b_right), "R~A": correlation(right, ref_a_right),
                 "frames": app.client_stats()[0]["frames"], "error": app.render_error}
        # the right crop is the lower-left part of the blob's strip (panel and notification cut the rest):
        # with the whole scene framed (splatlab.framing) the blob covers ~10% of it
        assert drawn_fraction(left, (0, 0, 0)) > 0.2 and drawn_fraction(right, (0, 0, 0)) > 0.05, stats
        assert stats["L~A"] > 0.85 and stats["R~B"] > 0.85, stats
        assert stats["L~A"] - stats["L~B"] > 0.2 and stats["R~B"] - stats["R~A"] > 0.2, stats
        # the two halves show different scenes (same-size regions compared pixel by pixel)
        w = right.shape[1]
        assert np.abs(left[:, :w].astype(int) - right.astype(int)).mean() > 15, stats
    finally:
        viewer.close()
