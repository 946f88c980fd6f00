"""Issue 13, group 6 leftovers: huge positions, 0x0 cameras, NaN points, bad --out paths, streamed and
bounded renders, temp-file names in errors. Each case went red on the code before the fix."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.data import DatasetError, load_scene
from splatlab.gaussians import Gaussians
from splatlab.io import write_splats
from splatlab.render import cli as render_cli
from splatlab.render.cli import auto_orbit, render_main, render_views
from splatlab.train import train_main
from test_train_scene import make_scene

SYS_UNWRITABLE = Path("/sys/splatlab_test_output")  # sysfs refuses new files, even to root


def needs_sysfs() -> None:
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs Linux sysfs (an unwritable folder even for root)")


def scene(n: int = 12, seed: int = 0, scale: float = 1.0) -> Gaussians:
    g = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=g) * scale, torch.randn(n, 4, generator=g),
                     torch.full((n, 3), -2.0), torch.full((n,), 2.0), torch.rand(n, 1, 3, generator=g) * 2 - 1)


def one_line_err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------ render


def test_render_of_huge_positions_is_one_line(tmp_path, capsys):
    path = tmp_path / "far.ply"
    write_splats(path, scene(scale=1e30))  # finite, but no camera in the depth range frames it
    out = tmp_path / "far.png"
    assert render_main([str(path), "--out", str(out), "--width", "16", "--height", "16"]) == 1
    assert "far.ply" in one_line_err(capsys) and not out.exists()


def test_a_stray_far_splat_neither_breaks_nor_changes_the_render(tmp_path):
    """One diverged splat at 1e30 among 8: framed without it, and culled (the picture equals the
    render of the scene without it, from the same cameras)."""
    g = scene(8)
    means = g.means.detach().clone()
    means[-1] = 1e30
    stray = Gaussians(means, g.params["quats"].detach(), g.params["scales"].detach(),
                      g.params["opacities"].detach(), g.params["sh0"].detach())
    vm, Ks = auto_orbit(stray, 2, 24, 24)
    assert torch.isfinite(vm).all()
    with_stray = render_views(stray, vm, Ks, 24, 24)
    without = render_views(stray.subset(torch.arange(7)), vm, Ks, 24, 24)
    assert with_stray.amax() > 0.05  # something is drawn
    torch.testing.assert_close(with_stray, without)


def test_render_looking_straight_down(tmp_path):
    path = tmp_path / "s.ply"
    write_splats(path, scene())
    assert render_main([str(path), "--out", str(tmp_path / "top.png"), "--width", "16", "--height", "16",
                        "--elevation", "90"]) == 0
    assert np.asarray(Image.open(tmp_path / "top.png")).max() > 0


def test_views_are_written_as_they_are_rendered(tmp_path, monkeypatch):
    path = tmp_path / "s.ply"
    write_splats(path, scene())
    calls: list[tuple[int, list[str]]] = []
    real = render_cli.render_views

    def spy(g, viewmats, *args, **kw):
        calls.append((len(viewmats), sorted(p.name for p in tmp_path.glob("v_*.png"))))
        return real(g, viewmats, *args, **kw)

    monkeypatch.setattr(render_cli, "render_views", spy)
    assert render_main([str(path), "--out", str(tmp_path / "v.png"), "--views", "3", "--width", "16",
                        "--height", "16"]) == 0
    assert [n for n, _ in calls] == [1, 1, 1]  # one camera per render, never all of them at once
    assert calls[2][1] == ["v_000.png", "v_001.png"]  # the earlier views were already on disk


@pytest.mark.parametrize("flags", [["--views", "1000000000"], ["--width", "1000000", "--height", "1000000"],
                                   ["--width", "20000", "--height", "8"], ["--time", "nan"]])
def test_render_sizes_are_bounded_with_one_line(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as info:
        render_main([str(tmp_path / "missing.ply"), "--out", str(tmp_path / "o.png"), *flags])
    assert info.value.code == 2
    assert one_line_err(capsys).startswith("splatlab render: error:")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["folder", "under_file", "sys"])
def test_render_bad_out_is_one_line_before_reading(tmp_path, capsys, where):
    if where == "sys":
        needs_sysfs()
    (tmp_path / "afile").write_text("x")
    out = {"folder": tmp_path, "under_file": tmp_path / "afile" / "x.png", "sys": SYS_UNWRITABLE / "x.png"}[where]
    # the input does not even exist: the output is checked first, so the error is about --out
    assert render_main([str(tmp_path / "missing.ply"), "--out", str(out)]) == 1
    err = one_line_err(capsys)
    assert str(out) in err and ".tmp" not in err, err


def test_export_error_names_the_target_not_the_temp_file(tmp_path, capsys):
    needs_sysfs()
    from splatlab.io.cli import export_main

    src = tmp_path / "s.ply"
    write_splats(src, scene())
    target = SYS_UNWRITABLE.parent / "splatlab_test.spz"
    assert export_main([str(src), str(target)]) == 1
    err = one_line_err(capsys)
    assert str(target) in err and ".tmp" not in err, err


def test_atomic_write_errors_name_the_target():
    needs_sysfs()
    from splatlab.io._common import atomic_write_bytes

    target = SYS_UNWRITABLE.parent / "splatlab_test.bin"
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x")
    assert info.value.filename == str(target)


@pytest.mark.parametrize("flags", [["--sog-iterations", "-1"], ["--sog-iterations", str(10 ** 12)]])
def test_export_sog_iterations_bounded(tmp_path, capsys, flags):
    from splatlab.io.cli import export_main

    src = tmp_path / "s.ply"
    write_splats(src, scene())
    with pytest.raises(SystemExit) as info:
        export_main([str(src), str(tmp_path / "o.sog"), *flags])
    assert info.value.code == 2 and "sog-iterations" in one_line_err(capsys)
    assert not (tmp_path / "o.sog").exists()


# ------------------------------------------------------------------------------------ data


def colmap_scene(root: Path, camera_line: str, points: str = "1 0 0 0 128 128 128 0.5\n") -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "sparse" / "0").mkdir(parents=True)
    lines = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        lines += [f"{i + 1} 1 0 0 0 {i * 0.1} 0 4 1 {i}.png", ""]
    (root / "sparse/0/cameras.txt").write_text(camera_line + "\n")
    (root / "sparse/0/images.txt").write_text("\n".join(lines) + "\n")
    (root / "sparse/0/points3D.txt").write_text(points)
    return root


@pytest.mark.parametrize("camera, needle", [("1 PINHOLE 0 0 20 20 0 0", "0x0"),
                                            ("1 PINHOLE 16 16 0 20 8 8", "intrinsics"),
                                            ("1 SIMPLE_PINHOLE 16 16 nan 8 8", "intrinsics")])
def test_degenerate_camera_is_a_dataset_error(tmp_path, camera, needle):
    root = colmap_scene(tmp_path / "c", camera)
    with pytest.raises(DatasetError, match=needle) as info:
        load_scene(root)
    assert "cameras.txt" in str(info.value)


def test_nan_colmap_points_are_a_dataset_error(tmp_path):
    root = colmap_scene(tmp_path / "c", "1 PINHOLE 16 16 20 20 8 8", "1 nan 0 0 1 1 1 0\n2 0 0 0 1 1 1 0\n")
    with pytest.raises(DatasetError, match="points3D.txt.*non-finite"):
        load_scene(root)


def _nan_points_ply(path: Path) -> None:
    xyz = np.array([[0, 0, 0], [np.nan, 1, 1], [1, 1, 1]], dtype="<f4")
    head = ("ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            "property float z\nend_header\n")
    path.write_bytes(head.encode() + xyz.tobytes())


def test_nan_points3d_fails_before_the_run_folder_exists(tmp_path, capsys):
    root = make_scene(tmp_path / "s", size=16, n_train=3, n_test=1)
    _nan_points_ply(root / "points3d.ply")
    out = tmp_path / "run"
    assert train_main([str(root), "--out", str(out), "--iterations", "2", "--no-progress"]) == 1
    err = one_line_err(capsys)
    assert "points3d.ply" in err and "non-finite" in err, err
    assert not out.exists()


def test_trainer_problems_leave_no_run_folder(tmp_path, capsys, monkeypatch):
    """Whatever refuses the data while the trainer is set up does so before the folder is made."""
    from splatlab.train import trainer as trainer_mod

    def refuse(*a, **k):
        raise DatasetError("initialisation refused the points")

    monkeypatch.setattr(trainer_mod, "init_gaussians", refuse)
    root = make_scene(tmp_path / "s", size=16, n_train=3, n_test=1)
    out = tmp_path / "run"
    assert train_main([str(root), "--out", str(out), "--iterations", "2", "--no-progress"]) == 1
    assert "refused" in one_line_err(capsys)
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under_file", "sys"])
def test_train_bad_out_is_one_line_before_loading(tmp_path, capsys, where, monkeypatch):
    if where == "sys":
        needs_sysfs()
    from splatlab.train import launch

    def no_loading(cfg):
        raise AssertionError("the scene was loaded before --out was checked")

    monkeypatch.setattr(launch, "prepare_scene", no_loading)
    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "under_file": tmp_path / "afile" / "run", "sys": SYS_UNWRITABLE / "run"}[where]
    root = tmp_path / "scene"
    root.mkdir()
    assert train_main([str(root), "--out", str(out), "--iterations", "2", "--no-progress"]) == 1
    err = one_line_err(capsys)
    assert str(out) in err, err
    assert (tmp_path / "afile").read_text() == "x"


def test_view_max_res_bounds(tmp_path, capsys):
    from splatlab.view.cli import view_main

    for value in ("0", "100000"):
        assert view_main([str(tmp_path), "--max-res", value, "--port", "0"]) == 1
        assert "--max-res" in one_line_err(capsys)


def test_process_out_in_unwritable_place_is_one_line(tmp_path, capsys):
    needs_sysfs()
    from splatlab.data.cli import process_main

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photos / "a.png")
    out = SYS_UNWRITABLE / "scene"
    assert process_main([str(photos), str(out), "--quiet"]) == 1
    err = one_line_err(capsys)
    assert str(out) in err and ".sfm" not in err, err


# ------------------------------------------------------------------------------------ view


def test_view_refuses_an_explicit_out_that_is_a_file_before_starting(tmp_path, capsys):
    """`view --out` names the screenshot folder: a file there is a one-line error up front (before, the
    viewer started and every screenshot failed in the page)."""
    from splatlab.view.cli import view_main

    path = tmp_path / "s.ply"
    write_splats(path, scene())
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    assert view_main([str(path), "--out", str(taken), "--port", "0"]) == 1
    err = one_line_err(capsys)
    assert "taken.txt" in err and "not a folder" in err
    assert taken.read_text() == "not a folder"


def test_view_refuses_an_unwritable_out(tmp_path, capsys):
    needs_sysfs()
    from splatlab.view.cli import view_main

    path = tmp_path / "s.ply"
    write_splats(path, scene())
    assert view_main([str(path), "--out", str(SYS_UNWRITABLE), "--port", "0"]) == 1
    assert "splatlab_test_output" in one_line_err(capsys)
