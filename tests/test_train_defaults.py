"""Defaults that do the right thing on a new capture: automatic cached triangulation, the fallback
initialisation, the Gaussian budget rule, `--preset paper`, and their one-line errors."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.train.cli import build_parser, config_from_args, train_main
from splatlab.train.config import TrainConfig, gaussian_budget

ROBOT = Path(__file__).resolve().parent.parent / "scenes" / "robot"


def _c2w_gl(eye: np.ndarray, target=np.zeros(3)) -> np.ndarray:
    """OpenGL camera-to-world looking from `eye` at `target`, z up (written independently of splatlab)."""
    back = (eye - target) / np.linalg.norm(eye - target)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, back, eye
    return m


def _flat_scene(root: Path, n: int = 8, radius: float = 4.0, fov: float = 0.8, size: int = 32) -> list[np.ndarray]:
    """Opaque uniform-grey views on a ring around the origin: nothing to match, so triangulation fails."""
    (root / "train").mkdir(parents=True)
    frames, eyes = [], []
    for i in range(n):
        a = 2 * math.pi * i / n
        eye = np.array([radius * math.cos(a), radius * math.sin(a), 1.0])
        eyes.append(eye)
        Image.fromarray(np.full((size, size, 3), 128, np.uint8)).save(root / "train" / f"r_{i}.png")
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": _c2w_gl(eye).tolist()})
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": fov, "frames": frames}))
    return eyes


def test_budget_scales_with_training_pixels():
    assert gaussian_budget(60 * 128 * 128) == 60 * 128 * 128 // 20
    assert gaussian_budget(30 * 128 * 128) * 2 == gaussian_budget(60 * 128 * 128)
    assert gaussian_budget(100) == 10_000  # floor for tiny captures
    assert gaussian_budget(100 * 256 * 256, max_budget=50_000) == 50_000  # what a CPU trains in minutes
    assert gaussian_budget(100 * 256 * 256, max_budget=10 ** 6) == 100 * 256 * 256 // 20
    cfg = TrainConfig().resolve_budget(40 * 128 * 128)
    assert cfg.cap_max == 40 * 128 * 128 // 20 and cfg.init_num_points == cfg.cap_max // 4
    assert TrainConfig(cap_max=5000).resolve_budget(10 ** 8).cap_max == 5000  # the user's value wins
    half = TrainConfig(pixels_per_gaussian=10.0).resolve_budget(20 * 128 * 128)
    assert half.cap_max == 2 * TrainConfig().resolve_budget(20 * 128 * 128).cap_max


def test_trainer_sizes_its_budget_from_the_loaded_scene():
    from splatlab.data import load_scene
    from splatlab.train.trainer import Trainer

    scene = load_scene(ROBOT, downscale=4)
    scene.train = scene.train.subset(list(range(40)))
    pixels = 40 * 64 * 64  # 40 views of 256² at a quarter of the resolution
    trainer = Trainer(TrainConfig(scene=str(ROBOT), pixels_per_gaussian=5.0, init_num_points=500,
                                  auto_triangulate=False), scene)
    assert trainer.cfg.cap_max == max(10_000, pixels // 5)
    assert trainer.strategy.cap_max == trainer.cfg.cap_max


def test_preset_paper_restores_the_30k_recipe_and_explicit_flags_win(tmp_path):
    parse = lambda *a: config_from_args(build_parser().parse_args([str(ROBOT), *a]))[0]  # noqa: E731
    fast = parse()
    assert (fast.iterations, fast.cap_max, fast.init_num_points) == (3000, None, None)
    paper = parse("--preset", "paper")
    assert paper.iterations == 30_000 and paper.init_num_points == 100_000
    r = paper.resolve_budget(10 ** 6).resolved()
    assert r.cap_max == 0 and r.refine_stop == 15_000 and r.reset_every == 3000  # no budget, the paper schedule
    assert r.make_strategy().cap_max == 0
    assert parse("--preset", "paper", "--iterations", "7000", "--cap-max", "123").iterations == 7000
    assert parse("--preset", "paper", "--cap-max", "123").cap_max == 123


@pytest.mark.parametrize("args, needle", [
    (["--preset", "huge"], "--preset"),
    (["--cap-max", "-1"], "--cap-max"),
    (["--pixels-per-gaussian", "0"], "--pixels-per-gaussian"),
    (["--prune-screen-size", "1.5"], "--prune-screen-size"),
])
def test_bad_defaults_flags_are_one_line_errors(args, needle, capsys):
    assert train_main([str(ROBOT), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_failed_triangulation_is_remembered_and_the_fallback_keeps_clear_of_the_cameras(tmp_path, monkeypatch):
    pytest.importorskip("pycolmap")
    monkeypatch.setenv("SPLATLAB_AUTO_TRIANGULATE", "1")
    from splatlab.data import load_scene
    from splatlab.data import triangulate as tri
    from splatlab.train.init import init_points

    eyes = _flat_scene(tmp_path / "flat")
    scene = load_scene(tmp_path / "flat")
    logs = []
    out = tri.ensure_points(scene, log=logs.append)
    assert out.points is None
    assert json.loads((tmp_path / "flat" / tri.STATUS_FILE).read_text())["points"] == 0
    assert not (tmp_path / "flat" / tri.POINTS_FILE).exists()

    def boom(*a, **k):
        raise AssertionError("triangulated again")

    monkeypatch.setattr(tri, "triangulate_scene", boom)
    assert tri.ensure_points(load_scene(tmp_path / "flat"), log=logs.append).points is None  # not retried

    cfg = TrainConfig(init_num_points=4000, background_points=0)
    pts, _, n_bg = init_points(out, cfg, torch.Generator().manual_seed(0))
    assert n_bg == 0 and len(pts) == 4000
    # cameras 4.12 from the origin looking at it, half field of view 0.4 rad: the region every view
    # covers is the ball of radius |eye|·sin(0.4) around the origin; nothing may start outside it
    reach = float(np.linalg.norm(eyes[0])) * math.sin(0.4)
    assert pts.norm(dim=1).max().item() <= reach * 1.01
    nearest_camera = torch.cdist(pts.double(), torch.tensor(np.stack(eyes))).min(dim=1).values
    assert nearest_camera.min().item() >= float(np.linalg.norm(eyes[0])) - reach * 1.01


def test_few_points_get_the_fallback_added():
    from splatlab.data import load_scene
    from splatlab.train.init import init_points

    scene = load_scene(ROBOT, downscale=4)
    scene.points = torch.zeros(10, 3)
    scene.points_rgb = torch.full((10, 3), 0.5)
    cfg = TrainConfig(init_num_points=1000, min_init_points=300, init_sweep="off")  # auto would sweep: test below
    pts, _, n_bg = init_points(scene, cfg, torch.Generator().manual_seed(0))
    assert n_bg == 0 and len(pts) == 1010  # alpha capture: no background points
    scene.points = torch.zeros(400, 3)
    scene.points_rgb = torch.full((400, 3), 0.5)
    assert len(init_points(scene, cfg, torch.Generator().manual_seed(0))[0]) == 400


def test_auto_triangulation_runs_once_and_is_cached(tmp_path, monkeypatch):
    pytest.importorskip("pycolmap")
    monkeypatch.setenv("SPLATLAB_AUTO_TRIANGULATE", "1")
    from splatlab.data import load_scene
    from splatlab.data import triangulate as tri

    root = tmp_path / "robot16"
    (root / "train").mkdir(parents=True)
    meta = json.loads((ROBOT / "transforms_train.json").read_text())
    meta["frames"] = meta["frames"][:16]
    for f in meta["frames"]:
        name = Path(f["file_path"]).name + ".png"
        shutil.copy(ROBOT / "train" / name, root / "train" / name)
    (root / "transforms_train.json").write_text(json.dumps(meta))
    logs = []
    scene = tri.ensure_points(load_scene(root), log=logs.append)
    assert scene.points is not None and len(scene.points) > 50
    assert (root / tri.POINTS_FILE).is_file()
    assert sum("triangulating" in line for line in logs) == 1

    def boom(*a, **k):
        raise AssertionError("triangulated again")

    monkeypatch.setattr(tri, "triangulate_scene", boom)
    again = load_scene(root)  # the Blender loader reads the cached points3d.ply by itself
    assert again.points is not None and torch.equal(again.points, scene.points)
    assert tri.ensure_points(again, log=logs.append) is again


def _ground_scene(root: Path, n: int = 8, radius: float = 3.0, size: int = 48, fov: float = 0.8) -> None:
    """A textured ground plane z = 0 seen from an arc of cameras 50° above it, all looking at the
    origin; each pixel's colour is the texture where its ray meets the plane (exact, numpy)."""
    (root / "train").mkdir(parents=True)
    f = 0.5 * size / math.tan(0.5 * fov)
    frames = []
    for i in range(n):
        a = math.radians(-40 + 80 * i / (n - 1))
        el = math.radians(50)
        eye = radius * np.array([math.cos(el) * math.cos(a), math.cos(el) * math.sin(a), math.sin(el)])
        c2w = _c2w_gl(eye)
        v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
        d_cam = np.stack([(u - size / 2) / f, -(v - size / 2) / f, -np.ones_like(u)], -1)  # OpenGL axes
        d = d_cam @ c2w[:3, :3].T
        t = -eye[2] / d[..., 2]
        x, y = eye[0] + t * d[..., 0], eye[1] + t * d[..., 1]
        rgb = np.stack([0.5 + 0.25 * np.sin(7.3 * x + 2.1 * y) + 0.2 * np.sin(3.1 * x - 5.7 * y),
                        0.5 + 0.3 * np.sin(6.4 * x + 6.1 * y),
                        0.5 + 0.3 * np.cos(2.3 * x - 8.2 * y + 1.0)], -1)
        Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)).save(root / "train" / f"r_{i}.png")
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": c2w.tolist()})
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": fov, "frames": frames}))


def test_posed_capture_without_points_starts_from_the_plane_sweep_not_triangulation(tmp_path, monkeypatch):
    """The default (`--init-sweep auto`): no triangulation, and most initial points on the true surface."""
    monkeypatch.setenv("SPLATLAB_AUTO_TRIANGULATE", "1")
    from splatlab.data import DatasetError
    from splatlab.data import triangulate as tri
    from splatlab.train.init import init_points
    from splatlab.train.trainer import prepare_scene

    _ground_scene(tmp_path / "ground")
    calls = []

    def fake_triangulate(*a, **k):
        calls.append(1)
        raise DatasetError("no matches")

    monkeypatch.setattr(tri, "triangulate_scene", fake_triangulate)
    cfg = TrainConfig(scene=str(tmp_path / "ground"), init_num_points=2000, background_points=0)
    scene = prepare_scene(cfg)
    assert not calls and scene.points is None and not (tmp_path / "ground" / tri.POINTS_FILE).exists()
    pts, _, _ = init_points(scene, cfg, torch.Generator().manual_seed(0))
    assert len(pts) == 2000 + 500  # sweep points, and a quarter of the random fallback for what it missed
    # within half a plane spacing of the ground (64 planes uniform in disparity over 0.75..12, at a
    # depth of 3: 0.18 apart along the ray): the 2000 swept points of 2500, and a few random ones
    on_ground = (pts[:, 2].abs() < 0.1).float().mean().item()
    assert on_ground > 0.75, on_ground
    # the random fallback alone fills the ball of radius 3·sin(0.4) around the origin: ~13 % in the slab
    random_only, _, _ = init_points(scene, dataclasses.replace(cfg, init_sweep="off"), torch.Generator().manual_seed(0))
    assert (random_only[:, 2].abs() < 0.1).float().mean().item() < 0.2

    prepare_scene(dataclasses.replace(cfg, init_sweep="off"))  # off: the triangulation as before
    assert len(calls) == 1


def test_sweep_on_shrunk_views_and_a_subset_of_references_still_finds_the_ground(tmp_path):
    """Views averaged 2x down and 4 of 8 cameras as references: the points stay on the plane, and
    every view (references or not) learns at full size which pixels have a surface in front."""
    from splatlab.data import load_scene
    from splatlab.train.init import camera_focus
    from splatlab.train.sweep import matched_pixels, sweep_points

    _ground_scene(tmp_path / "ground", size=96)
    scene = load_scene(tmp_path / "ground")
    result = sweep_points(scene, focus=camera_focus(scene)[0], max_side=48, max_refs=4)
    assert result.factor == 2 and len(result.groups) == 4 and result.static_depths[0].shape == (48, 48)
    pts = result[0]
    assert len(pts) > 1000
    assert float(pts[:, 2].abs().median()) < 0.1  # half a plane spacing (see the test above)
    known = matched_pixels(result, scene)
    assert len(known) == 8 and all(k.shape == (96, 96) for k in known)
    refs = {g[0] for g in result.groups}
    # every pixel sees the textured ground: most are known, in the views the sweep skipped too
    assert min(float(known[i].float().mean()) for i in range(8) if i not in refs) > 0.8
