"""Issue 13, group 1: checkpoints load with weights_only=True (no code runs), config stored as JSON;
old-format, random and empty `.pt` files give one-line errors; resume keeps working."""
from __future__ import annotations

import pytest
import torch

from splatlab.checkpoint_file import CheckpointError, load_checkpoint
from splatlab.train import train_main
from splatlab.train.checkpoint import find_checkpoint
from splatlab.view.cli import view_main
from test_train_scene import make_scene


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    scene = make_scene(tmp_path_factory.mktemp("scene") / "s", size=16, n_train=3, n_test=1)
    out = tmp_path_factory.mktemp("run") / "run"
    assert train_main([str(scene), "--out", str(out), "--iterations", "4", "--stop-at", "2", "--init-points", "50",
                       "--eval-every", "0", "--save-every", "0", "--no-progress"]) == 0
    return out


def test_checkpoint_is_plain_data_and_resumes(run_dir):
    path = find_checkpoint(run_dir)
    raw = torch.load(path, weights_only=True)  # no pickled objects at all
    assert isinstance(raw["config_json"], str) and "config" not in raw
    ck = load_checkpoint(path)
    assert ck["config"]["iterations"] == 4 and ck["step"] == 2
    assert train_main(["--resume", str(run_dir), "--no-progress"]) == 0
    assert load_checkpoint(find_checkpoint(run_dir))["step"] == 4


def test_malicious_checkpoint_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"version": 2, "params": {}, "config_json": "{}", "x": _Evil(str(marker))}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert train_main(["--resume", str(evil), "--no-progress"]) == 1
    assert view_main([str(evil), "--port", "0"]) == 1
    assert not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("evil.pt" in line and "refused" in line for line in err), err
    # a run folder whose .ply is newer than an evil checkpoint: the checkpoint is only read for its config
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_0000001.pt").write_bytes(evil.read_bytes())
    from splatlab.view.source import open_run_folder
    with pytest.raises(Exception):
        open_run_folder(run)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage" * 50, b"PK\x03\x04" + b"\x00" * 100])
def test_bad_resume_file_is_one_line(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    assert train_main(["--resume", str(bad), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("splatlab train: error: cannot resume:") and "bad.pt" in err and "\n" not in err, err


def test_old_pickled_format_is_refused(tmp_path):
    import numpy as np

    old = tmp_path / "old.pt"
    torch.save({"version": 1, "params": {"means": torch.zeros(1, 3)}, "config": {"scene": "x"},
                "rng": {"numpy": np.random.get_state()}}, old)
    with pytest.raises(CheckpointError, match="old.pt: refused"):
        load_checkpoint(old)
