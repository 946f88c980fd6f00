"""Temporal Gaussian Hierarchy: segment assignment and selection against hand-made tables, the
slicing formulas against closed forms, active-rows renders against a full closed-form render, and
multi-view video input (layouts and one-line errors)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.cameras import Cameras, intrinsics, look_at
from splatlab.data import DatasetError, load_scene
from splatlab.gaussians import Gaussians
from splatlab.methods import make_method
from splatlab.methods.temporal import (active_rows, active_segments, assign_segments, sliced_means,
                                       support_radius, temporal_weight)
from splatlab.render import rasterize, render

R2 = math.exp(-2.0)  # o_th with support radius r = 2 exactly


# ------------------------------------------------------------------------- hierarchy tables

def test_support_radius_closed_form():
    assert support_radius(R2) == pytest.approx(2.0)
    assert support_radius(0.05) == pytest.approx(math.sqrt(2 * math.log(20)))


@pytest.mark.parametrize("mu,sigma,expected", [
    (0.5, 0.5, (0, 0)),     # support [-0.5, 1.5] leaves the clip: global
    (0.5, 0.2, (1, 0)),     # [0.1, 0.9]: only the root segment holds it
    (0.25, 0.1, (2, 0)),    # [0.05, 0.45]: first half
    (0.5, 0.05, (1, 0)),    # [0.4, 0.6] crosses the half-way boundary: stays at the root
    (0.6, 0.05, (3, 2)),    # [0.5, 0.7]: third quarter [0.5, 0.75]
    (0.125, 0.05, (3, 0)),  # [0.025, 0.225]: first quarter
    (0.9, 0.08, (0, 0)),    # [0.74, 1.06] reaches past the end: global
    (0.7, 0.02, (3, 2)),    # [0.66, 0.74]: finest level is 3 (quarters), not finer
])
def test_assignment_table(mu, sigma, expected):
    level, seg = assign_segments(torch.tensor([mu]), torch.tensor([sigma]), 3, R2)
    assert (int(level), int(seg)) == expected


def test_active_segments_table():
    assert active_segments(0.6, 3) == [(0, 0), (1, 0), (2, 1), (3, 2)]
    assert active_segments(0.0, 3) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert active_segments(0.249, 3) == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert active_segments(0.25, 3) == [(0, 0), (1, 0), (2, 0), (3, 1)]
    assert active_segments(1.0, 3) == [(0, 0), (1, 0), (2, 1), (3, 3)]  # the last instant: last segments


def test_boundary_crossing_gaussian_is_active_on_both_sides():
    """A Gaussian whose support crosses the 0.5 boundary lives in the root and is drawn on both sides."""
    level, seg = assign_segments(torch.tensor([0.5, 0.375, 0.875]), torch.tensor([0.05, 0.05, 0.05]), 3, R2)
    assert level.tolist() == [1, 3, 3] and seg.tolist() == [0, 1, 3]
    assert active_rows(level, seg, 0.45, 3).tolist() == [0, 1]
    assert active_rows(level, seg, 0.55, 3).tolist() == [0]
    assert active_rows(level, seg, 0.8, 3).tolist() == [0, 2]


def test_active_set_size_independent_of_video_length():
    """Same content density per second, 1x..8x longer clips (one more level per doubling): the
    number of Gaussians active at any moment grows only by the Gaussians straddling the new
    level's boundary (about density x support width = 400 x 4 x 0.03 = 48 per doubling), while
    the total grows 8x."""
    gen = torch.Generator().manual_seed(0)
    counts = []
    for mult in (1, 2, 4, 8):
        levels = 3 + int(math.log2(mult))
        n = 400 * mult  # 400 short-lived Gaussians per clip unit + 50 static ones
        mu = torch.rand(n, generator=gen)
        sigma = torch.full((n,), 0.03 / mult)  # the same support in seconds
        mu = torch.cat([mu, torch.full((50,), 0.5)])
        sigma = torch.cat([sigma, torch.full((50,), 10.0)])
        level, seg = assign_segments(mu, sigma, levels, R2)
        counts.append(max(len(active_rows(level, seg, float(t), levels)) for t in torch.linspace(0, 1, 33)))
    straddling = 400 * 2 * 2.0 * 0.03  # density x support width (r = 2) per added level
    for i, c in enumerate(counts):
        assert c - counts[0] <= 1.5 * straddling * i, counts
    assert counts[-1] < 0.15 * (400 * 8 + 50)  # a small subset of the 8x clip
    assert counts[0] < 400


# ------------------------------------------------------------------------- formulas

def test_temporal_weight_and_motion_closed_form():
    mu, sigma = torch.tensor([[0.4]]), torch.tensor([[0.1]])
    for tau in (0.4, 0.45, 0.55, 0.59):
        assert float(temporal_weight(tau, mu, sigma, R2)) == pytest.approx(math.exp(-0.5 * ((tau - 0.4) / 0.1) ** 2))
    assert float(temporal_weight(0.61, mu, sigma, R2)) == 0.0  # beyond 2σ: cut
    m = sliced_means(0.7, torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0, 0.0, -1.0]]), mu)
    torch.testing.assert_close(m, torch.tensor([[1.6, 2.0, 2.7]]))


@pytest.mark.parametrize("duration", [2.0, 16.0])
def test_time_learning_rates_are_in_seconds(duration):
    """One Adam step moves a time centre by t_mean_lr seconds (4 ms) and a velocity by
    velocity_lr scene units per second, whatever the clip's length (issue 15: rates in normalised
    time moved time centres 8x more frames on an 8x clip, into coarser segments)."""
    m = make_method("temporal", {"duration": duration})
    lrs = m.extra_lrs(None)
    t_mean = torch.nn.Parameter(torch.tensor([[0.5]], dtype=torch.float64))  # float64: the step is exact
    vel = torch.nn.Parameter(torch.zeros(1, 3, dtype=torch.float64))
    opt = torch.optim.Adam([{"params": [t_mean], "lr": lrs["t_mean"]}, {"params": [vel], "lr": lrs["velocity"]}],
                           eps=1e-15)
    (3.0 * t_mean.sum() - 7.0 * vel[0, 0]).backward()  # first Adam step: lr x sign(grad)
    opt.step()
    assert (0.5 - float(t_mean.detach())) * duration == pytest.approx(4e-3, rel=1e-9)  # seconds
    assert float(vel.detach()[0, 0]) / duration == pytest.approx(5e-4, rel=1e-9)  # units per second
    assert lrs["t_log_scale"] == pytest.approx(1e-2)  # log scale: no unit


def test_trainer_uses_time_rates_of_the_clip_without_timed_points(tmp_path):
    """The clip's duration is known before the optimisers are built, also when no initial point
    is placed in time (no plane sweep): the time-centre rate is 4 ms over a 0.4 s clip."""
    from splatlab.train import TrainConfig, Trainer
    from splatlab.train.trainer import prepare_scene

    cfg = TrainConfig(scene=str(_folder_rig(tmp_path / "s")), method="temporal", iterations=10,
                      init_sweep="off", auto_triangulate=False)
    trainer = Trainer(cfg, prepare_scene(cfg))
    groups = {g["name"]: g["lr"] for g in trainer.optimizers["gaussians"].param_groups}
    assert trainer.method.config.duration == pytest.approx(0.4)  # 4 frames at 10 fps
    assert groups["t_mean"] == pytest.approx(4e-3 / 0.4)
    assert groups["velocity"] == pytest.approx(5e-4 * 0.4)


def _random_temporal_gaussians(n: int, seed: int) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 1.2
    gs = Gaussians.from_points(means, torch.rand(n, 3, generator=g), torch.full((n,), 0.08), opacity=0.6,
                               sh_degree=0)
    fields = gs.detached_fields()
    fields["t_mean"] = torch.rand(n, 1, generator=g)
    fields["t_log_scale"] = torch.log(0.03 + 0.3 * torch.rand(n, 1, generator=g))
    fields["velocity"] = (torch.rand(n, 3, generator=g) - 0.5) * 0.5
    return Gaussians.from_fields(fields)


def test_active_rows_render_equals_full_closed_form_render():
    method = make_method("temporal", {"levels": 4, "duration": 2.0})
    g = _random_temporal_gaussians(300, 1)
    g.method = method.spec()
    K = intrinsics(40.0, 40.0, 24.0, 24.0)
    vm = torch.stack([look_at(torch.tensor([3.0, 0.5, 1.0]), torch.zeros(3)),
                      look_at(torch.tensor([-1.0, 3.0, 1.0]), torch.zeros(3))])
    times = torch.tensor([0.3, 1.7])
    cams = Cameras(vm, K.expand(2, 3, 3), 48, 48, times=times)
    level, seg = method.assignment(g)
    assert (level > 0).any() and len(torch.unique(level)) >= 3  # a real hierarchy
    with torch.no_grad():
        ours = render(g, cams, background=torch.zeros(3), backend="cpu").images
        for c, t in enumerate(times.tolist()):
            tau = t / 2.0
            p = g.params
            sigma = torch.exp(p["t_log_scale"])
            w = torch.exp(-0.5 * ((tau - p["t_mean"]) / sigma) ** 2).reshape(-1)
            w = torch.where(w > method.config.opacity_threshold, w, torch.zeros_like(w))
            means = p["means"] + p["velocity"] * (tau - p["t_mean"])
            ref, _, _ = rasterize(means=means, quats=p["quats"], scales=g.scales, opacities=g.opacities * w,
                                  colors=g.sh_coeffs, sh_degree=0, viewmats=vm[c:c + 1], Ks=K[None],
                                  width=48, height=48, backgrounds=torch.zeros(3), backend="cpu")
            torch.testing.assert_close(ours[c], ref[0], atol=2e-5, rtol=0)
            assert len(active_rows(level, seg, tau, 4)) < len(g)  # fewer rows were drawn
    assert ours.std() > 0.01


# ------------------------------------------------------------------------- multi-view video input

def _frame(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def _rig_json(root, entries, **top):
    poses = []
    for i in range(len(entries)):
        a = 2 * math.pi * i / len(entries)
        c2w = torch.linalg.inv(look_at(torch.tensor([3 * math.cos(a), 3 * math.sin(a), 1.0]), torch.zeros(3)))
        poses.append((c2w @ torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))).tolist())  # OpenCV -> OpenGL
    frames = [{**e, "transform_matrix": p} for e, p in zip(entries, poses)]
    (root / "transforms.json").write_text(json.dumps({"fl_x": 8, "fl_y": 8, "w": 8, "h": 8, **top, "frames": frames}))
    return root


def _folder_rig(root, n_cams=3, n_frames=4, **top):
    for c in range(n_cams):
        for f in range(n_frames):
            _frame(root / f"cam{c}" / f"{f:04d}.png", 10 * c + f)
    return _rig_json(root, [{"file_path": f"cam{c}"} for c in range(n_cams)], fps=top.pop("fps", 10), **top)


def test_frame_folders_load_with_times_and_held_out_camera(tmp_path):
    scene = load_scene(_folder_rig(tmp_path / "s", test_camera="cam1"))
    assert scene.format == "video" and len(scene.train) == 8 and len(scene.test) == 4
    assert scene.test.cameras.camera_ids.tolist() == [1, 1, 1, 1]
    torch.testing.assert_close(scene.test.cameras.times, torch.tensor([0.0, 0.1, 0.2, 0.3]))
    assert sorted(set(scene.train.cameras.camera_ids.tolist())) == [0, 2]
    assert float(scene.test.load_image(3)[0, 0, 0]) == pytest.approx(13 / 255)  # camera 1, frame 3


def test_per_image_time_layout(tmp_path):
    entries = []
    for c in range(2):
        for f in range(3):
            _frame(tmp_path / f"img/c{c}_{f}.png", c * 50 + f)
    root = tmp_path
    _rig_json(root, [{"file_path": "x"}, {"file_path": "y"}])
    meta = json.loads((root / "transforms.json").read_text())
    poses = [fr["transform_matrix"] for fr in meta["frames"]]
    meta["frames"] = [{"file_path": f"img/c{c}_{f}.png", "time": f / 30, "camera": f"c{c}",
                       "transform_matrix": poses[c]} for c in range(2) for f in range(3)]
    (root / "transforms.json").write_text(json.dumps(meta))
    scene = load_scene(root)
    assert len(scene.test) == 3 and len(scene.train) == 3
    del meta["frames"][4]  # camera c1 loses its frame at t = 1/30
    (root / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"camera c1 is missing the frame at time 0.0333"):
        load_scene(root)


def test_missing_frame_in_folder(tmp_path):
    root = _folder_rig(tmp_path / "s")
    (root / "cam2" / "0002.png").unlink()
    with pytest.raises(DatasetError) as e:
        load_scene(root)
    assert "cam2: missing frame 2" in str(e.value) and "\n" not in str(e.value)


def test_cameras_of_different_length(tmp_path):
    root = _folder_rig(tmp_path / "s")
    (root / "cam1" / "0003.png").unlink()
    with pytest.raises(DatasetError, match=r"cam1: 3 frames but .*cam0 has 4"):
        load_scene(root)


def _video(path, n, fps):
    import imageio_ffmpeg
    path.parent.mkdir(parents=True, exist_ok=True)
    w = imageio_ffmpeg.write_frames(str(path), (16, 16), fps=fps, macro_block_size=1, ffmpeg_log_level="error")
    w.send(None)
    for i in range(n):
        w.send(np.full((16, 16, 3), 20 * i, np.uint8))
    w.close()


def test_videos_decode_and_frame_rate_mismatch(tmp_path):
    root = tmp_path / "v"
    _video(root / "a.mp4", 5, 10)
    _video(root / "b.mp4", 5, 10)
    _rig_json(root, [{"file_path": "a.mp4"}, {"file_path": "b.mp4"}])
    scene = load_scene(root)
    assert len(scene.test) == 5 and scene.test.cameras.times[-1] == pytest.approx(0.4)
    assert float(scene.train.load_image(4).mean()) == pytest.approx(80 / 255, abs=0.03)
    _video(root / "b.mp4", 5, 15)
    with pytest.raises(DatasetError, match=r"b.mp4: 15 fps but .*a.mp4 runs at 10 fps"):
        load_scene(root)


def test_unreadable_video(tmp_path):
    root = tmp_path / "v"
    _video(root / "a.mp4", 3, 10)
    (root / "b.mp4").write_bytes(b"not a video at all" * 10)
    _rig_json(root, [{"file_path": "a.mp4"}, {"file_path": "b.mp4"}])
    with pytest.raises(DatasetError) as e:
        load_scene(root)
    msg = str(e.value)
    assert msg.startswith("unreadable video") and "b.mp4" in msg and "\n" not in msg


# ------------------------------------------------------------------------- segment store / paging

def _hand_gaussians(mu, sigma):
    n = len(mu)
    g = Gaussians.from_points(torch.arange(n, dtype=torch.float32)[:, None].expand(n, 3).clone(),
                              torch.full((n, 3), 0.5), torch.full((n,), 0.1), sh_degree=0)
    f = {k: v for k, v in g.detached_fields().items() if k != "shN"}
    f["t_mean"] = torch.tensor(mu)[:, None]
    f["t_log_scale"] = torch.log(torch.tensor(sigma))[:, None]
    f["velocity"] = torch.zeros(n, 3)
    return Gaussians.from_fields(f)


def test_store_pages_in_only_active_segments_and_reassigns_on_page_out(tmp_path):
    from splatlab.methods.temporal_store import SegmentStore, segment_name

    method = make_method("temporal", {"levels": 3, "duration": 4.0, "opacity_threshold": R2})
    #              global  root   L3 S1   L3 S3   L2 S0
    mu, sigma = [0.5, 0.5, 0.375, 0.875, 0.25], [0.5, 0.05, 0.05, 0.05, 0.1]
    store = SegmentStore.create(tmp_path / "tgh", method)
    store.write_all(_hand_gaussians(mu, sigma))
    assert sorted(store.index["segments"]) == sorted(segment_name(*k) for k in
                                                    [(0, 0), (1, 0), (3, 1), (3, 3), (2, 0)])
    rows = lambda g: sorted(int(x) for x in g.params["means"][:, 0].tolist())  # noqa: E731 (means encode the row)
    assert rows(store.load_active(1.8)) == [0, 1, 2, 4]  # τ = 0.45: the crossing Gaussian (1) is active
    assert rows(store.load_active(2.2)) == [0, 1]        # τ = 0.55: the other side of the boundary
    assert rows(store.load_active(3.2)) == [0, 1, 3]     # τ = 0.8

    # page in at τ = 0.45, move row 2 to the last quarter (τ 0.875), page out: it leaves L3 S1
    keys = store.active_keys(1.8)
    tensors = store.load_tensors(keys)
    moved = torch.nonzero(tensors["means"][:, 0] == 2).item()
    tensors["t_mean"][moved] = 0.875
    store.page_out(tensors, keys)
    assert segment_name(3, 1) not in store.index["segments"]
    assert store.index["segments"][segment_name(3, 3)]["count"] == 2
    assert rows(store.load_active(3.2)) == [0, 1, 2, 3]
    assert store.total_count() == 5
    reopened = SegmentStore(tmp_path / "tgh")  # the index on disk says the same
    assert reopened.index == store.index


def test_render_cli_time_renders_that_moment(tmp_path):
    """`splatlab render --time T` equals the closed-form slice at T and differs between moments."""
    from splatlab.io import read_splats, write_splats
    from splatlab.render.cli import auto_orbit, render_main

    method = make_method("temporal", {"levels": 3, "duration": 2.0})
    g = _random_temporal_gaussians(200, 3)
    g.method = method.spec()
    ply = tmp_path / "tgh.ply"
    write_splats(ply, g)
    back = read_splats(ply)
    outs = {}
    for t in (0.4, 1.6):
        assert render_main([str(ply), "--out", str(tmp_path / f"t{t}.png"), "--width", "40", "--height", "40",
                            "--time", str(t)]) == 0
        outs[t] = np.asarray(Image.open(tmp_path / f"t{t}.png"), dtype=np.float32) / 255
        vm, Ks = auto_orbit(back, 1, 40, 40)
        p = back.params
        tau = t / 2.0
        w = temporal_weight(tau, p["t_mean"], torch.exp(p["t_log_scale"]), method.config.opacity_threshold)
        ref, _, _ = rasterize(means=sliced_means(tau, p["means"], p["velocity"], p["t_mean"]), quats=p["quats"],
                              scales=back.scales, opacities=back.opacities * w.reshape(-1), colors=back.sh_coeffs,
                              sh_degree=0, viewmats=vm, Ks=Ks, width=40, height=40, backgrounds=torch.zeros(3))
        np.testing.assert_allclose(outs[t], ref[0].detach().clamp(0, 1).numpy(), atol=1 / 255 + 1e-6)
    assert np.abs(outs[0.4] - outs[1.6]).mean() > 0.005


# ------------------------------------------------------------------------- SH only where it pays

def test_sh_rest_bound_closed_form():
    """Band 1 alone: the colour change c·C1·y peaks at |c|·C1 (C1 = √(3/4π)), which the bound equals;
    a random degree-3 row: no direction of 200k changes a channel by more than the bound."""
    from splatlab.methods.temporal_store import sh_rest_bound
    from splatlab.render.sh import eval_sh

    sh = torch.zeros(2, 15, 3)
    sh[0, 0, 1] = -0.3  # basis -C1·y, green channel
    gen = torch.Generator().manual_seed(0)
    sh[1] = 0.05 * torch.randn(15, 3, generator=gen)
    bound = sh_rest_bound(sh)
    assert float(bound[0]) == pytest.approx(0.3 * math.sqrt(3 / (4 * math.pi)), rel=1e-6)
    dirs = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=gen), dim=-1)
    rest = torch.cat([torch.zeros(1, 3), sh[1]])  # band 0 zero: the change the higher bands make
    change = eval_sh(3, rest.expand(len(dirs), 16, 3), dirs).abs().amax(dim=0)
    assert float(change.max()) <= float(bound[1]) + 1e-6
    assert float(sh_rest_bound(torch.zeros(3, 0, 3)).abs().sum()) == 0.0


def test_store_keeps_sh_only_where_it_pays(tmp_path):
    """Rows whose higher bands are zero store colour only, unused trailing bands are not stored,
    reading gives the dense tensor back exactly; sh_min zeroes only rows whose bound is below it."""
    from safetensors.torch import load_file

    from splatlab.methods.temporal_store import SegmentStore, segment_name

    method = make_method("temporal", {"levels": 2, "duration": 4.0, "opacity_threshold": R2})
    g = _hand_gaussians([0.5] * 4, [0.5] * 4)  # all global
    f = g.detached_fields()
    sh = torch.zeros(4, 15, 3)
    sh[1, 2, 0] = 0.5   # band 1 only: bound 0.5·C1 = 0.244
    sh[3, 0, 2] = 0.01  # bound 0.0049
    f["shN"] = sh
    g = Gaussians.from_fields(f)
    store = SegmentStore.create(tmp_path / "a", method)
    store.write_all(g)
    raw = load_file(str(tmp_path / "a" / segment_name(0, 0)))
    assert raw["shN"].shape == (2, 3, 3)  # rows 1 and 3, bands up to 1
    assert raw["shN.rows"].tolist() == [1, 3] and raw["shN.bases"].tolist() == [15]
    assert torch.equal(store.read_segment(0, 0)["shN"], sh)
    loaded = store.load_active(2.0)
    assert torch.equal(loaded.params["shN"], sh) and torch.equal(loaded.params["means"], f["means"])

    pruned = SegmentStore.create(tmp_path / "b", method)
    pruned.write_all(g, sh_min=0.01)
    back = pruned.read_segment(0, 0)["shN"]
    assert torch.equal(back[1], sh[1]) and float(back[3].abs().sum()) == 0.0
    assert load_file(str(tmp_path / "b" / segment_name(0, 0)))["shN.rows"].tolist() == [1]
    assert pruned.nbytes() < store.nbytes()

    none = SegmentStore.create(tmp_path / "c", method)
    none.write_all(g, sh_min=1.0)  # no row pays: colour only, and the dense zeros come back
    assert torch.equal(none.read_segment(0, 0)["shN"], torch.zeros(4, 15, 3))


def test_export_segments_writes_every_row_once_and_refuses_bad_input(tmp_path, capsys):
    """`splatlab export --segments`: the folder holds exactly the .ply's rows, each in the segment its
    time support gives (`assign_segments`), and a moment exported from the folder equals the one
    exported from the .ply; a plain scene or an occupied target is a one-line error, nothing written."""
    from splatlab.io import read_splats, write_splats
    from splatlab.io.cli import export_main
    from splatlab.methods.temporal_store import SegmentStore, segment_name

    method = make_method("temporal", {"levels": 3, "duration": 2.0})
    g = _random_temporal_gaussians(150, 5)
    g.method = method.spec()
    ply = tmp_path / "tgh.ply"
    write_splats(ply, g)
    folder = tmp_path / "clip"
    assert export_main([str(ply), str(folder), "--segments", "-q"]) == 0
    store = SegmentStore(folder)
    assert store.total_count() == 150
    level, seg = assign_segments(g.params["t_mean"].detach(), torch.exp(g.params["t_log_scale"].detach()), 3,
                                 method.config.opacity_threshold)
    for (lv, sg) in set(zip(level.tolist(), seg.tolist())):
        rows = store.read_segment(lv, sg)
        expected = g.params["means"].detach()[(level == lv) & (seg == sg)]
        assert segment_name(lv, sg) in store.index["segments"]
        torch.testing.assert_close(rows["means"], expected)
    for name, source in (("from_ply", ply), ("from_folder", folder)):
        assert export_main([str(source), str(tmp_path / f"{name}.ply"), "--time", "0.7", "-q"]) == 0
    a, b = read_splats(tmp_path / "from_ply.ply"), read_splats(tmp_path / "from_folder.ply")
    order_a, order_b = torch.argsort(a.params["means"][:, 0]), torch.argsort(b.params["means"][:, 0])
    torch.testing.assert_close(a.params["means"][order_a], b.params["means"][order_b])
    torch.testing.assert_close(a.opacities[order_a], b.opacities[order_b])

    plain = tmp_path / "plain.ply"
    write_splats(plain, _random_temporal_gaussians(10, 6))  # temporal fields but no temporal method tag
    capsys.readouterr()
    for args in ([str(plain), str(tmp_path / "x"), "--segments"], [str(ply), str(folder), "--segments"],
                 [str(ply), str(tmp_path / "y"), "--segments", "--sh-min", "-1"]):
        assert export_main(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert not list(tmp_path.glob(".*.tmp-*"))
