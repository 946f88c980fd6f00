"""`splatlab view` without a browser: input errors, run folders, render modes, camera paths, live-viewer cost."""
from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from splatlab.io import write_splats
from splatlab.view.campath import interpolate_path, mp4_available, render_path
from splatlab.view.cli import view_main
from splatlab.view.render import RENDER_MODES, RenderSet, ViewFilter, look_at_camera, render_image
from splatlab.view.source import open_source
from splatlab.view.testing import drawn_fraction, textured_sphere

CAM = look_at_camera((2.6, 0, 1.2), (0, 0, 0), math.radians(50), 4 / 3)


@pytest.mark.parametrize("content", [b"", b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n", b"\x00" * 64,
                                     b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\nend_header\n"],
                         ids=["empty", "ascii-no-props", "zeros", "truncated"])
def test_bad_file_one_line_error(tmp_path, capsys, content):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(content)
    for argv in ([str(bad), "--port", "0"], [str(bad), "--static", "--port", "0"]):
        assert view_main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("splatlab view: error:") and "bad.ply" in err[0], err


def test_missing_and_non_run_folder(tmp_path, capsys):
    assert view_main([str(tmp_path / "nope.spz")]) == 1
    assert view_main([str(tmp_path)]) == 1
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert view_main([str(tmp_path / "bad.pt")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("splatlab view: error:") for line in lines)


def test_cli_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.sog"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    proc = subprocess.run([sys.executable, "-m", "splatlab", "view", str(bad)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_run_folder_prefers_newest_result(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    g = textured_sphere(200)
    from splatlab.checkpoint_file import encode_checkpoint
    torch.save(encode_checkpoint({"step": 7, "params": {k: v.detach() for k, v in g.params.items()}, "config": {"scene": str(tmp_path / "gone")}}),
               run / "checkpoints" / "step_0000007.pt")
    src = open_source(str(run))
    assert src.format == "checkpoint" and src.step == 7 and len(src.gaussians) == 200
    assert src.cameras is None and any("cameras unavailable" in n for n in src.notes)
    time.sleep(0.01)
    write_splats(run / "point_cloud.ply", textured_sphere(300))
    src = open_source(str(run))
    assert src.format == "ply" and len(src.gaussians) == 300 and src.step == 7


def test_render_modes_and_filters():
    g = textured_sphere(800)
    rs = RenderSet.build(g)
    images = {m: render_image(rs, CAM, 80, 60, m) for m in RENDER_MODES}
    for m, img in images.items():
        assert img.shape == (60, 80, 3) and np.isfinite(img).all() and drawn_fraction(img * 255, (0, 0, 0)) > 0.2, m
    for a in RENDER_MODES:
        for b in RENDER_MODES:
            if a < b:
                assert np.abs(images[a] - images[b]).mean() > 0.02, (a, b)
    assert len(RenderSet.build(g, ViewFilter(min_opacity=0.99))) == 0
    assert len(RenderSet.build(g, ViewFilter(max_scale=0.01))) == 0
    half = RenderSet.build(g, ViewFilter(crop_min=(0, -2, -2), crop_max=(2, 2, 2)))
    assert 0 < len(half) < len(g) and bool((half.means[:, 0] >= 0).all())
    assert RenderSet.build(g, ViewFilter(sh_degree_cap=0)).sh_degree == 0


def test_camera_path_frames(tmp_path):
    rs = RenderSet.build(textured_sphere(300))
    keys = [look_at_camera((2.6 * math.cos(a), 2.6 * math.sin(a), 1.0), (0, 0, 0), math.radians(50), 4 / 3)
            for a in (0.0, 1.0, 2.0)]
    cams = interpolate_path(keys, 5)
    assert np.allclose(cams[0].position, keys[0].position) and np.allclose(cams[-1].position, keys[-1].position)
    seen = []
    res = render_path(rs, cams, str(tmp_path / "path"), 40, 30, progress=lambda d, n: seen.append((d, n)))
    assert res["frames"] == 5 and seen[-1] == (5, 5)
    names = sorted(p.name for p in (tmp_path / "path").iterdir())
    assert names[:5] == [f"frame_{i:05d}.png" for i in range(5)]
    if mp4_available():
        assert res["mp4"] and names[5:] == ["path.mp4"] and (tmp_path / "path" / "path.mp4").stat().st_size > 0
    else:
        assert res["mp4"] is None and len(names) == 5


def test_live_viewer_costs_nothing_without_clients():
    pytest.importorskip("viser")
    from splatlab.view.live import LiveViewer

    g = textured_sphere(5000)
    viewer = LiveViewer(port=0, verbose=False)
    try:
        viewer.update(0, g, {"loss": 1.0})  # first call builds the GUI once
        t0 = time.perf_counter()
        for step in range(1, 10001):
            viewer.update(step, g, {"loss": 1.0})
            viewer.wait_while_paused()
            assert not viewer.should_pause()
        per_call = (time.perf_counter() - t0) / 10000
        assert per_call < 20e-6, f"{per_call * 1e6:.1f} us per update with no client"
        assert viewer.pushes == 1 and viewer.step == 10000
    finally:
        viewer.close()


# ------------------------------------------------------------------ several inputs, thumbnails

def test_several_inputs_each_checked_with_a_one_line_error(tmp_path, capsys):
    good = tmp_path / "good.ply"
    write_splats(good, textured_sphere(100))
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n")
    cases = [([str(good), str(bad)], "broken.ply"), ([str(bad), str(good)], "broken.ply"),
             ([str(good), str(tmp_path / "missing.spz")], "missing.spz"),
             ([str(good), str(tmp_path)], str(tmp_path)),  # a folder that is neither a run nor SOG
             ([str(good), str(good), "--static"], "one file")]
    for argv, named in cases:
        assert view_main([*argv, "--port", "0"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("splatlab view: error:") and named in err[0], (argv, err)
    assert view_main([str(good), "--max-cameras", "-1"]) == 1
    assert "--max-cameras" in capsys.readouterr().err


def test_open_sources_labels_are_distinct(tmp_path):
    from splatlab.view.app import ALL_SOURCES, unique_labels
    from splatlab.view.source import open_sources

    for run in ("a", "b"):
        (tmp_path / run / "x").mkdir(parents=True)
        write_splats(tmp_path / run / "x" / "scene.ply", textured_sphere(50))
    write_splats(tmp_path / "other.spz", textured_sphere(60))
    paths = [str(tmp_path / "a" / "x" / "scene.ply"), str(tmp_path / "b" / "x" / "scene.ply"),
             str(tmp_path / "other.spz")]
    labels = [s.label for s in open_sources(paths)]
    assert len(set(labels)) == 3 and "a" in labels[0] and "b" in labels[1] and labels[2] == "other.spz", labels
    assert unique_labels(["r", "r", ALL_SOURCES, "r"]) == ["r", "r (2)", f"{ALL_SOURCES} (2)", "r (3)"]


def test_side_by_side_strips_are_each_scenes_render():
    from splatlab.view.app import compose_side_by_side
    from splatlab.view.render import ViewCamera

    a, b = RenderSet.build(textured_sphere(400)), RenderSet.build(textured_sphere(400, radius=0.5))
    img = compose_side_by_side([a, b], CAM, 96, 40, divider=False)
    assert img.shape == (40, 96, 3)
    half = ViewCamera(CAM.wxyz, CAM.position, CAM.fov_y, 48 / 40)
    np.testing.assert_allclose(img[:, :48], render_image(a, half, 48, 40), atol=1e-6)
    np.testing.assert_allclose(img[:, 48:], render_image(b, half, 48, 40), atol=1e-6)
    assert np.abs(img[:, :48] - img[:, 48:]).mean() > 0.02
    three = compose_side_by_side([a, b, a], CAM, 90, 40)
    assert three.shape == (40, 90, 3) and np.allclose(three[:, 29:31], 0.5)  # divider between strips
    np.testing.assert_allclose(compose_side_by_side([a], CAM, 80, 60), render_image(a, CAM, 80, 60))


def test_thumbnails_and_camera_cap():
    from splatlab.view.app import camera_subset, thumbnail

    img = torch.rand(300, 400, 3)
    t = thumbnail(img)
    assert t.shape == (48, 64, 3) and t.dtype == np.uint8
    assert abs(float(t.mean()) - float(img.mean()) * 255) < 3
    assert thumbnail(np.zeros((20, 10, 3), np.uint8)).shape == (20, 10, 3)  # never upscaled
    assert thumbnail(torch.rand(1000, 100, 3)).shape == (64, 6, 3)
    assert camera_subset(5, 200) == [0, 1, 2, 3, 4] and camera_subset(10, 0) == []
    sub = camera_subset(1000, 200)
    assert len(sub) == 200 and sub[0] == 0 and sub[-1] == 999 and sub == sorted(set(sub))


def test_cli_opens_several_inputs(tmp_path):
    import os
    import signal

    pytest.importorskip("viser")
    for name, seed in (("a.ply", 0), ("b.spz", 1)):
        write_splats(tmp_path / name, textured_sphere(200, seed=seed))
    # A job started in the background by a non-interactive shell (as CI runners may) inherits
    # SIGINT as *ignored*, and Python then never raises KeyboardInterrupt. Give the viewer the
    # disposition of a terminal, where the Ctrl+C this test stands for comes from.
    proc = subprocess.Popen([sys.executable, "-m", "splatlab", "view", str(tmp_path / "a.ply"), str(tmp_path / "b.spz"),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if "open http://" in line:
                break
        assert any(line.startswith("splatlab view: a.ply: 200 Gaussians") for line in lines), lines
        assert any(line.startswith("splatlab view: b.spz: 200 Gaussians") for line in lines), lines
        assert "open http://127.0.0.1:" in lines[-1], lines
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr.read()
