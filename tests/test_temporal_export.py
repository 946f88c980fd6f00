"""`splatlab export RUN --time T out.ply`: a flat .ply of the Gaussians active at T, checked against a
hand-made clip (which rows exist then, where they are, how opaque) with splatlab's reader and with
plyfile, and against the temporal render at T; from a run folder, a .ply and a temporal splat folder."""
from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from splatlab.cameras import Cameras, look_at
from splatlab.gaussians import Gaussians, MethodSpec
from splatlab.io import read_splats, write_splats
from splatlab.io.cli import export_main
from splatlab.methods.temporal_store import SegmentStore
from splatlab.render import method_of, render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLAT_TRANSFORM = os.path.join(ROOT, ".tools", "node_modules", ".bin", "splat-transform")
DURATION = 2.0
# (count, centre, t_mean, σt, velocity): a static shell (support reaches outside the clip: global
# level) and clusters living in [0.128, 0.372] / [0.628, 0.872] of the clip (r = √(-2 ln 0.05) = 2.448)
PARTS = ((60, (0, 0, 0), 0.5, 1.0, (0, 0, 0)), (20, (0.5, 0, 0), 0.25, 0.05, (0, 0.8, 0)),
         (15, (-0.5, 0, 0), 0.75, 0.05, (0, 0, 0.8)))


def clip() -> Gaussians:
    gen = torch.Generator().manual_seed(1)
    fields = []
    for n, centre, t_mean, sigma, vel in PARTS:
        v = torch.randn(n, 3, generator=gen)
        pts = torch.tensor(centre) + 0.3 * v / v.norm(dim=1, keepdim=True)
        g = Gaussians.from_points(pts, torch.rand(n, 3, generator=gen), torch.full((n,), 0.08), opacity=0.7,
                                  sh_degree=1)
        f = g.detached_fields()
        f["shN"] = 0.1 * torch.randn(n, 3, 3, generator=gen)
        f["t_mean"] = torch.full((n, 1), t_mean)
        f["t_log_scale"] = torch.full((n, 1), math.log(sigma))
        f["velocity"] = torch.tensor(vel, dtype=torch.float32).expand(n, 3).clone()
        fields.append(f)
    return Gaussians.from_fields({k: torch.cat([f[k] for f in fields]) for k in fields[0]},
                                 MethodSpec("temporal", {"levels": 3, "duration": DURATION}))


def expected_at(g: Gaussians, t: float) -> dict[str, np.ndarray]:
    """By hand: rows whose support holds τ = t / duration, at μ + v(τ - μt), opacity σ(o)·w(τ)."""
    tau = t / DURATION
    rows, start = [], 0
    for n, _, t_mean, sigma, _ in PARTS:
        if abs(tau - t_mean) <= math.sqrt(-2 * math.log(0.05)) * sigma:
            rows += list(range(start, start + n))
        start += n
    p = {k: v.detach().numpy().astype(np.float64) for k, v in g.params.items()}
    r = np.array(rows)
    w = np.exp(-0.5 * ((tau - p["t_mean"][r, 0]) / np.exp(p["t_log_scale"][r, 0])) ** 2)
    return {"means": p["means"][r] + p["velocity"][r] * (tau - p["t_mean"][r]),
            "opacity": 1 / (1 + np.exp(-p["opacities"][r])) * w, "scales": p["scales"][r],
            "f_dc": p["sh0"][r, 0], "quats": p["quats"][r]}


@pytest.mark.parametrize("t, n", [(0.5, 80), (1.5, 75), (1.0, 60)])
def test_export_time_writes_the_active_gaussians(tmp_path, t, n):
    from plyfile import PlyData

    g = clip()
    ply = tmp_path / "clip.ply"
    write_splats(ply, g)
    out = tmp_path / f"t{t}.ply"
    assert export_main([str(ply), str(out), "--time", str(t), "-q"]) == 0
    want = expected_at(g, t)
    assert len(want["means"]) == n  # shell + the cluster alive then (none at the midpoint)

    v = PlyData.read(str(out))["vertex"]  # independent reader
    names = v.data.dtype.names
    assert v.count == n and not any(k in names for k in ("t_mean", "t_log_scale", "velocity"))
    xyz = np.stack([v["x"], v["y"], v["z"]], 1)
    np.testing.assert_allclose(xyz, want["means"], atol=1e-6)
    np.testing.assert_allclose(1 / (1 + np.exp(-v["opacity"].astype(np.float64))), want["opacity"], atol=1e-5)
    np.testing.assert_allclose(np.stack([v[f"scale_{i}"] for i in range(3)], 1), want["scales"], atol=1e-6)
    np.testing.assert_allclose(np.stack([v[f"f_dc_{i}"] for i in range(3)], 1), want["f_dc"], atol=1e-6)

    back = read_splats(out)  # splatlab's reader: a plain 3DGS scene with the SH kept
    assert len(back) == n and back.method is None and back.sh_degree == 1
    # and it draws what the temporal scene draws at t
    cams = Cameras(look_at(torch.tensor([2.5, -1.0, 1.2]), torch.zeros(3))[None],
                   torch.tensor([[40.0, 0, 24], [0, 40, 24], [0, 0, 1]])[None], 48, 48, times=torch.tensor([t]))
    with torch.no_grad():
        ref = render(g, cams, background=torch.zeros(3)).images
        ours = render(back, Cameras(cams.viewmats, cams.Ks, 48, 48), background=torch.zeros(3)).images
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_export_time_from_run_folder_and_temporal_splat_folder(tmp_path):
    g = clip()
    run = tmp_path / "run"
    run.mkdir()
    write_splats(run / "point_cloud.ply", g)
    store = SegmentStore.create(tmp_path / "store", method_of(g))
    store.write_all(g)
    a, b = tmp_path / "a.ply", tmp_path / "b.ply"
    assert export_main([str(run), str(a), "--time", "0.5", "-q"]) == 0
    assert export_main([str(tmp_path / "store"), str(b), "--time", "0.5", "-q"]) == 0
    ra, rb = read_splats(a), read_splats(b)
    want = expected_at(g, 0.5)
    assert len(ra) == len(rb) == len(want["means"])
    # the store pages in segment by segment: same Gaussians, maybe another row order
    order_a = np.lexsort(ra.means.detach().numpy().T)
    order_b = np.lexsort(rb.means.detach().numpy().T)
    np.testing.assert_allclose(ra.means.detach().numpy()[order_a], rb.means.detach().numpy()[order_b], atol=1e-6)
    # other formats take the moment too
    assert export_main([str(run), str(tmp_path / "m.spz"), "--time", "1.5", "-q"]) == 0
    assert len(read_splats(tmp_path / "m.spz")) == len(expected_at(g, 1.5)["means"])


def test_export_time_errors_are_one_line(tmp_path, capsys):
    g = clip()
    ply = tmp_path / "clip.ply"
    write_splats(ply, g)
    plain = tmp_path / "plain.ply"
    write_splats(plain, Gaussians.from_points(torch.zeros(3, 3), torch.rand(3, 3), torch.full((3,), 0.1)))
    store = SegmentStore.create(tmp_path / "store", method_of(g))
    store.write_all(g)
    for argv, msg in (([str(ply), str(tmp_path / "x.ply"), "--time", "3.0"], "outside the clip"),
                      ([str(ply), str(tmp_path / "x.ply"), "--time", "-1"], "outside the clip"),
                      ([str(plain), str(tmp_path / "x.ply"), "--time", "0.5"], "needs a temporal scene"),
                      ([str(tmp_path / "store"), str(tmp_path / "x.ply")], "give --time"),
                      ([str(ply), str(tmp_path / "x.ply"), "--time", "0.5", "--level", "0"], "not both")):
        assert export_main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "x.ply").exists()


@pytest.mark.skipif(not os.path.exists(SPLAT_TRANSFORM) or shutil.which("node") is None,
                    reason="splat-transform not installed (.tools)")
def test_exported_moment_is_read_by_splat_transform(tmp_path):
    g = clip()
    ply = tmp_path / "clip.ply"
    write_splats(ply, g)
    out = tmp_path / "moment.ply"
    assert export_main([str(ply), str(out), "--time", "0.5", "-q"]) == 0
    csv = tmp_path / "moment.csv"
    res = subprocess.run([SPLAT_TRANSFORM, str(out), str(csv)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = csv.read_text().strip().splitlines()
    assert len(lines) - 1 == len(expected_at(g, 0.5)["means"])


def test_render_time_range_frames_and_mp4(tmp_path, capsys):
    from PIL import Image

    from splatlab.render.cli import auto_orbit, render_main

    g = clip()
    ply = tmp_path / "clip.ply"
    write_splats(ply, g)
    back = read_splats(ply)
    assert render_main([str(ply), "--out", str(tmp_path / "f.png"), "--width", "32", "--height", "24",
                        "--time-range", "0.5", "1.5", "--frames", "3"]) == 0
    vm, Ks = auto_orbit(back, 1, 32, 24)
    frames = []
    for i, t in enumerate((0.5, 1.0, 1.5)):  # evenly spaced, ends included
        img = np.asarray(Image.open(tmp_path / f"f_f{i:03d}.png"), dtype=np.int32)
        with torch.no_grad():  # reference: the render path at that moment
            ref = render(back, Cameras(vm, Ks, 32, 24, times=torch.tensor([t])), background=torch.zeros(3)).images[0]
        assert np.abs(img - (ref.clamp(0, 1).numpy() * 255 + 0.5).astype(np.int32)).max() <= 1
        frames.append(img)
    assert np.abs(frames[0] - frames[2]).mean() > 0.5
    mp4 = tmp_path / "clip.mp4"
    assert render_main([str(ply), "--out", str(mp4), "--width", "32", "--height", "24",
                        "--time-range", "0", "2", "--frames", "5"]) == 0
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    assert meta["size"] == (32, 24) and sum(1 for _ in reader) == 5
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".frames_")]  # temp frames removed
    capsys.readouterr()
    assert render_main([str(ply), "--out", str(tmp_path / "x.png"), "--time-range", "0", "9"]) == 1
    assert "outside the clip" in capsys.readouterr().err


def test_viewer_opens_a_temporal_splat_folder(tmp_path):
    from splatlab.view.render import RenderSet
    from splatlab.view.source import ViewerInputError, open_source

    g = clip()
    store = SegmentStore.create(tmp_path / "store", method_of(g))
    store.write_all(g)
    src = open_source(str(tmp_path / "store"))
    assert len(src.gaussians) == sum(n for n, *_ in PARTS) and src.gaussians.method.name == "temporal"
    from splatlab.view.render import Detail

    for t in (0.5, 1.5):  # the slice at t has the rows the hand-made clip has then
        assert len(RenderSet.build(src.gaussians, detail=Detail(time=t)).plain) == len(expected_at(g, t)["means"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "index.json").write_text("{not json")
    with pytest.raises(ViewerInputError, match="bad"):
        open_source(str(tmp_path / "bad"))
