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
    torch.save({"step": 7, "params": {k: v.detach() for k, v in g.params.items()}, "config": {"scene": str(tmp_path / "gone")}},
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
    assert RenderSet.build(g, ViewFilter(sh_degree_cap=0)).sh.shape[1] == 1


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
