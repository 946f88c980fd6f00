"""Resuming from a checkpoint continues exactly: K straight steps == K/2 + resume K/2."""
from __future__ import annotations

import json

import pytest
import torch

from splatlab.train import train_main
from splatlab.train.checkpoint import find_checkpoint, load_checkpoint
from splatlab.train.outputs import is_complete
from splatlab.train.trainer import Trainer
from test_train_scene import make_scene

K = 24


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene") / "synth", size=24, n_train=8, n_test=2)


def args(scene_dir, out, strategy, *extra):
    return [str(scene_dir), "--out", str(out), "--iterations", str(K), "--strategy", strategy,
            "--init-points", "150", "--refine-start", "5", "--refine-every", "5", "--reset-every", "10",
            "--sh-degree", "1", "--batch-size", "2", "--eval-every", "0", "--save-every", "0",
            "--seed", "7", "--no-progress", *extra]


def final_state(out):
    ck = load_checkpoint(find_checkpoint(out))
    assert ck["step"] == K
    return ck


@pytest.mark.parametrize("strategy", ["default", "mcmc"])
def test_resume_is_exact(scene_dir, tmp_path, strategy):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_main(args(scene_dir, straight, strategy)) == 0
    assert train_main(args(scene_dir, split, strategy, "--stop-at", str(K // 2))) == 0
    assert not is_complete(split)  # stopped early: no metrics.json
    assert load_checkpoint(find_checkpoint(split))["step"] == K // 2
    assert train_main(["--resume", str(split), "--no-progress"]) == 0
    assert is_complete(split)
    a, b = final_state(straight), final_state(split)
    assert a["params"].keys() == b["params"].keys()
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    for (ka, sa), (kb, sb) in zip(a["optimizers"]["gaussians"]["state"].items(),
                                  b["optimizers"]["gaussians"]["state"].items()):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), (ka, key)
    ma = json.loads((straight / "metrics.json").read_text())
    mb = json.loads((split / "metrics.json").read_text())
    assert ma["num_gaussians"] == mb["num_gaussians"]
    assert ma["test"]["psnr"] == mb["test"]["psnr"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]


def test_ctrl_c_saves_checkpoint_and_resumes(scene_dir, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    original = Trainer.train_step

    def interrupting(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", interrupting)
    assert train_main(args(scene_dir, out, "default")) == 130
    assert not is_complete(out)
    assert load_checkpoint(find_checkpoint(out))["step"] == 3
    monkeypatch.setattr(Trainer, "train_step", original)
    assert train_main(["--resume", str(out), "--no-progress", "--stop-at", "6"]) == 0
    assert load_checkpoint(find_checkpoint(out))["step"] == 6
