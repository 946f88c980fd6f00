"""`train_main` errors: one line on stderr, an exit code, and no complete-looking output folder."""
from __future__ import annotations

import pytest

from splatlab.train import train_main
from splatlab.train.outputs import is_complete
from test_train_scene import make_scene


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene") / "synth", size=16, n_train=3, n_test=1)


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("splatlab train: error:"), err
    assert "\n" not in err, err
    return err


def test_missing_scene(tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main([str(tmp_path / "nope"), "--out", str(out), "--no-progress"]) == 1
    assert "nope" in one_line_error(capsys)
    assert not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["--iterations", "abc"], "iterations"),
    (["--iterations", "0"], "iterations"),
    (["--strategy", "nope"], "strategy"),
    (["--method", "nope"], "method"),
    (["--frobnicate"], "frobnicate"),
    (["--background", "1,2"], "background"),
    (["--batch-size", "3", "--nproc", "2"], "batch-size"),
])
def test_bad_args(scene_dir, tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    assert train_main([str(scene_dir), "--out", str(out), *argv]) == 2
    assert needle in one_line_error(capsys)
    assert not out.exists()


def test_no_scene_argument(capsys):
    assert train_main([]) == 2
    assert "scene" in one_line_error(capsys)


def test_corrupt_image_creates_no_folder(tmp_path, capsys):
    scene = make_scene(tmp_path / "bad", size=16, n_train=3, n_test=1)
    (scene / "train" / "r_1.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert train_main([str(scene), "--out", str(out), "--no-progress"]) == 1
    assert "r_1.png" in one_line_error(capsys)
    assert not out.exists()


def test_resume_missing_checkpoint(tmp_path, capsys):
    assert train_main(["--resume", str(tmp_path / "nothing")]) == 1
    one_line_error(capsys)


def test_stopped_run_is_not_complete(scene_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main([str(scene_dir), "--out", str(out), "--iterations", "10", "--stop-at", "2",
                       "--init-points", "50", "--no-progress"]) == 0
    assert out.exists() and not is_complete(out)
    assert list((out / "checkpoints").glob("step_*.pt"))
    # a finished run is never overwritten
    assert train_main([str(scene_dir), "--out", str(out), "--iterations", "2", "--init-points", "50",
                       "--no-progress"]) == 0
    assert is_complete(out)
    assert train_main([str(scene_dir), "--out", str(out), "--iterations", "2", "--no-progress"]) == 1
    assert "finished run" in one_line_error(capsys)
