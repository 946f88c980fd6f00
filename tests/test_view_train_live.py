"""`splatlab train --viewer`: the real trainer with a headless browser connected to its live viewer."""
from __future__ import annotations

import json
import threading
import time

import pytest

from splatlab.train import TrainConfig
from splatlab.train.trainer import Trainer, prepare_scene
from splatlab.view.headless import HeadlessChromium, find_chromium
from splatlab.view.testing import drawn_fraction
from test_train_scene import make_scene

pytest.importorskip("viser", reason="viser not installed")
pytestmark = pytest.mark.browser


def test_training_with_live_viewer_and_a_client(tmp_path):
    if find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    scene_dir = make_scene(tmp_path / "scene")
    cfg = TrainConfig(scene=str(scene_dir), out=str(tmp_path / "run"), iterations=400, init_num_points=300,
                      eval_every=0, save_every=0, progress=False, viewer=True, viewer_port=0, max_eval_views=2)
    trainer = Trainer(cfg, prepare_scene(cfg), tmp_path / "run")
    viewers = []
    real_start = trainer._start_viewer

    def start_and_remember():
        viewer = real_start()
        viewer.min_interval = 0.2
        viewers.append(viewer)
        return viewer

    trainer._start_viewer = start_and_remember
    result = {}
    thread = threading.Thread(target=lambda: result.update(trainer.run()), daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not viewers and time.time() < deadline:
        time.sleep(0.1)
    assert viewers, "the trainer did not start a live viewer"
    viewer = viewers[0]
    with HeadlessChromium(640, 480) as browser:
        browser.goto(viewer.url)
        deadline = time.time() + 90
        while time.time() < deadline and thread.is_alive():
            app = viewer.app
            if app is not None and app.client_stats() and app.client_stats()[0]["frames"] >= 2:
                break
            time.sleep(0.3)
        stats = viewer.app.client_stats() if viewer.app is not None else []
        assert stats and stats[0]["frames"] >= 2, f"the browser received no live renders: {stats}"
        shot = browser.screenshot()
        assert drawn_fraction(shot, (0, 0, 0)) > 0.01, "live render not visible"
        viewer.pause()
        time.sleep(1.0)
        frozen = trainer.step
        time.sleep(1.5)
        assert trainer.step == frozen and frozen < cfg.iterations, "training went on while paused"
        viewer.resume()
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert result["status"] == "finished"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["psnr"] > 13.0
