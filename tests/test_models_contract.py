"""The learned-model contract: typed config, save_pretrained/from_pretrained with a sha256
manifest, one-line errors for bad weights, `splatlab predict`, and the shared checks every
registered model must pass (diffusers-style: one test body, parametrised over the registry)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from splatlab.cameras import Cameras, intrinsics_from_fov, look_at
from splatlab.gaussians import Gaussians
from splatlab.io import read_splats
from splatlab.models import (FeedForwardModel, InputError, ModelConfig, WeightsError, available_models,
                             model_class, register_model)
from splatlab.models.cli import predict_main
from splatlab.render import render


@dataclass
class TinyConfig(ModelConfig):
    points: int = 16
    hidden: int = 8

    def validate(self) -> None:
        if self.points < 1:
            raise ValueError("points must be >= 1")


@register_model("tiny-test")
class TinyImageToSplats(FeedForwardModel):
    """Image -> a fixed number of coloured splats on a sphere (a contract test model)."""

    Config = TinyConfig

    def __init__(self, config=None):
        super().__init__(config)
        c = self.config
        self.encoder = nn.Linear(3, c.hidden)
        self.head = nn.Linear(c.hidden, c.points * 3)
        self.register_buffer("dirs", nn.functional.normalize(torch.randn(c.points, 3,
                                                                         generator=torch.Generator().manual_seed(0)), dim=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # (B, H, W, 3) -> (B, P, 3) colours
        feat = torch.relu(self.encoder(image.mean(dim=(1, 2))))
        return torch.sigmoid(self.head(feat)).reshape(image.shape[0], self.config.points, 3)

    def example_inputs(self, batch: int = 1):
        return {"image": torch.rand(batch, 8, 8, 3, generator=torch.Generator().manual_seed(1))}

    def to_gaussians(self, output, index=0):
        n = self.config.points
        return Gaussians.from_points(self.dirs * 0.5, output[index].detach(), torch.full((n,), 0.2), opacity=0.8,
                                     sh_degree=0)

    def predict_path(self, input_path, options=None):
        try:
            with Image.open(input_path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        except Exception as exc:
            raise InputError(f"{input_path}: unreadable image ({type(exc).__name__})") from None
        with torch.no_grad():
            return self.to_gaussians(self(torch.from_numpy(arr)[None]))


def registered() -> list[str]:
    return available_models()


# ------------------------------------------------------------------------------ shared model checks

@pytest.mark.parametrize("name", registered())
def test_every_model_round_trips_and_outputs_valid_splats(name, tmp_path):
    cls = model_class(name)
    torch.manual_seed(0)
    model = cls(cls.tiny_config()).eval()
    inputs = model.example_inputs(batch=2)
    with torch.no_grad():
        out = model(**inputs)
    g = model.to_gaussians(out, 1)
    assert isinstance(g, Gaussians) and len(g) > 0
    assert all(torch.isfinite(v).all() for v in g.params.values())
    model.save_pretrained(tmp_path / "w")
    again = cls.from_pretrained(tmp_path / "w")
    with torch.no_grad():
        out2 = again(**inputs)
    g2 = again.to_gaussians(out2, 1)
    for k in g.params:
        assert torch.equal(g.params[k], g2.params[k]), k
    # a plain Gaussians that the one render path draws
    cams = Cameras(look_at(torch.tensor([0.0, -2.5, 0.5]), torch.zeros(3))[None],
                   intrinsics_from_fov(0.8, 24, 24)[None], 24, 24)
    assert torch.isfinite(render(g2, cams).images).all()


# ------------------------------------------------------------------------------ the contract itself

@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(3)
    model = TinyImageToSplats(TinyConfig(points=12)).eval()
    folder = model.save_pretrained(tmp_path / "weights", card="# tiny-test\n")
    return model, folder


def test_save_then_load_is_exact(weights):
    model, folder = weights
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "manifest.json",
                                                        "model.safetensors"]
    loaded = TinyImageToSplats.from_pretrained(folder)
    assert loaded.config == TinyConfig(points=12)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert not loaded.training


def one_line_error(fn, *words):
    with pytest.raises(WeightsError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_tampered_weights_fail_the_sha256_check(weights):
    _, folder = weights
    blob = bytearray((folder / "model.safetensors").read_bytes())
    blob[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(blob))
    one_line_error(lambda: TinyImageToSplats.from_pretrained(folder), "model.safetensors", "sha256 mismatch")


def test_weights_of_another_model_or_config_are_refused(weights, tmp_path):
    _, folder = weights
    meta = json.loads((folder / "config.json").read_text())
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    meta["model"] = "tgs"
    (other / "config.json").write_text(json.dumps(meta))
    one_line_error(lambda: TinyImageToSplats.from_pretrained(other), "sha256 mismatch")  # the manifest catches edits
    # a consistent folder (re-manifested) for a different config: keys do not fit
    bigger = TinyImageToSplats(TinyConfig(points=12, hidden=4)).save_pretrained(tmp_path / "bigger")
    meta = json.loads((bigger / "config.json").read_text())
    meta["config"]["hidden"] = 8
    (bigger / "config.json").write_text(json.dumps(meta))
    from splatlab.models.base import sha256_file
    man = json.loads((bigger / "manifest.json").read_text())
    man["files"]["config.json"] = sha256_file(bigger / "config.json")
    (bigger / "manifest.json").write_text(json.dumps(man))
    one_line_error(lambda: TinyImageToSplats.from_pretrained(bigger), "does not fit the config", "wrong shape")
    (folder / "manifest.json").unlink()
    one_line_error(lambda: TinyImageToSplats.from_pretrained(folder), "manifest.json")
    one_line_error(lambda: TinyImageToSplats.from_pretrained(tmp_path / "nowhere"), "not a weights folder")


def test_no_shipped_weights_is_a_clear_error():
    one_line_error(lambda: TinyImageToSplats.from_pretrained(), "no shipped weights", "tiny-test")


def test_predict_cli(weights, tmp_path, capsys):
    _, folder = weights
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "obj.ply"
    assert predict_main(["tiny-test", str(photo), "--out", str(out), "--weights", str(folder)]) == 0
    g = read_splats(out)
    assert len(g) == 12
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert predict_main(["tiny-test", str(bad), "--out", str(tmp_path / "x.ply"), "--weights", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "bad.png" in err and "unreadable image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.ply").exists()
    assert predict_main(["nosuchmodel", str(photo), "--out", str(tmp_path / "y.ply")]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
    assert predict_main(["tiny-test", str(photo), "--out", str(tmp_path / "y.txt"), "--weights", str(folder)]) == 2
    assert predict_main(["tiny-test", str(photo), "--out", str(tmp_path / "z.ply"),
                         "--weights", str(tmp_path / "missing")]) == 1
    assert "not a weights folder" in capsys.readouterr().err
