"""`splatlab compress`: round trip within SOG quantisation bounds, report, SH pruning, errors."""
import json
import math
import os

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from splatlab.compress.cli import compress_main
from splatlab.compress.pipeline import CompressOptions, compress, sh_band_energy
from splatlab.gaussians import Gaussians
from splatlab.io import write_splats
from splatlab.io._common import SceneArrays, normalize_quats, sigmoid
from splatlab.io.sog import read_sog_arrays, read_sog_meta

SCENE = os.path.join(os.path.dirname(__file__), "..", "scenes", "robot")


def scene(n=900, sh=0.3, seed=0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=gen) * 2 - 1
    g = Gaussians(means, torch.randn(n, 4, generator=gen), torch.randn(n, 3, generator=gen) * 0.3 - 4,
                  torch.randn(n, generator=gen), torch.randn(n, 1, 3, generator=gen) * 0.5,
                  torch.randn(n, 15, 3, generator=gen) * sh)
    return g


@pytest.fixture
def ply(tmp_path):
    p = tmp_path / "in.ply"
    write_splats(p, scene())
    return p


def test_round_trip_within_quantisation(tmp_path, ply):
    out = tmp_path / "out.sog"
    rep = compress(ply, out, CompressOptions(sh_iterations=3))
    orig = SceneArrays.from_gaussians(scene())
    dec = read_sog_arrays(out)
    meta = read_sog_meta(out)
    assert len(dec) == len(orig) == rep["count"] and dec.sh_degree == 3
    # match decoded splats to the originals by position (the file is PLAS-ordered)
    dist, idx = cKDTree(orig.means).query(dec.means)
    assert np.array_equal(np.sort(idx), np.arange(len(orig)))
    o = orig.take(idx)
    t = lambda v: np.sign(v) * np.log1p(np.abs(v))  # noqa: E731
    q = 2 ** (16 - rep["means_bits"])  # positions rounded to multiples of q of 65535
    step = (np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])) / 65535
    assert (np.abs(t(dec.means) - t(o.means)) <= step * (q - 1 if q > 1 else 0.5) + 1e-6).all()
    qo, qd = normalize_quats(o.quats), normalize_quats(dec.quats)
    assert (np.abs(np.abs((qo * qd).sum(1)) - 1) < 2e-3).all()
    assert (np.abs(sigmoid(dec.opacities) - sigmoid(o.opacities)) <= 0.5 / 255 + 1e-5).all()
    for key, a, b in (("scales", dec.scales, o.scales), ("sh0", dec.sh0, o.sh0)):
        cb = np.array(meta[key]["codebook"])
        nearest = np.abs(b[..., None] - cb).min(-1)  # the 1-D codebook's own quantisation error
        assert (np.abs(a - b) <= nearest + 1e-5).all(), key
        assert np.isin(a.astype(np.float32), cb.astype(np.float32)).all(), key
    # the report
    sizes = rep["sizes"]
    assert sizes["total"] == os.path.getsize(out)
    assert sum(v for k, v in sizes.items() if k != "total") == sizes["total"]
    assert rep["ply_bytes"] == os.path.getsize(ply) and rep["ratio_vs_ply"] > 2
    assert rep["neighbour_distance"] <= rep["neighbour_distance_morton"]
    assert rep["sh_degree_out"] == 3 and len(rep["sh_band_energy"]) == 3


def test_sh_pruning(tmp_path):
    p = tmp_path / "flat.ply"
    write_splats(p, scene(sh=0.0))
    rep = compress(p, tmp_path / "a.sog", CompressOptions(order="morton"))
    assert rep["sh_degree_out"] == 0 and "shN" not in rep["sizes"] and rep["notes"]
    rep = compress(p, tmp_path / "b.sog", CompressOptions(order="morton", auto_sh=False, sh_iterations=2))
    assert rep["sh_degree_out"] == 3
    rep = compress(p, tmp_path / "c.sog", CompressOptions(order="morton", sh_degree=1, auto_sh=False,
                                                          sh_iterations=2))
    assert rep["sh_degree_out"] == 1
    assert sh_band_energy(SceneArrays.from_gaussians(scene(sh=0.0))) == [0.0, 0.0, 0.0]


def test_invisible_splats_dropped(tmp_path):
    g = scene(n=400)
    g.params["opacities"].data[:100] = -8.0  # sigmoid < 1/255: no rasterizer draws these
    p = tmp_path / "inv.ply"
    write_splats(p, g)
    rep = compress(p, tmp_path / "a.sog", CompressOptions(order="morton", sh_iterations=2))
    assert rep["count_in"] == 400 and rep["count"] == 300 and rep["dropped_invisible"] == 100
    assert len(read_sog_arrays(tmp_path / "a.sog")) == 300
    for opts in (CompressOptions(order="morton", sh_iterations=2, drop_invisible=False),
                 CompressOptions(order="keep", sh_iterations=2)):  # keep: a trained grid must not shift
        rep = compress(p, tmp_path / "b.sog", opts)
        assert rep["count"] == 400 and rep["dropped_invisible"] == 0
        assert len(read_sog_arrays(tmp_path / "b.sog")) == 400


def test_cli_report_and_eval(tmp_path, capsys):
    p = tmp_path / "s.splat"
    gen = torch.Generator().manual_seed(0)
    n = 400
    g = Gaussians.from_points(torch.randn(n, 3, generator=gen) * 0.3, torch.rand(n, 3, generator=gen),
                              torch.full((n,), 0.05), opacity=0.5, sh_degree=0)
    write_splats(p, g)
    out, rj = tmp_path / "s.sog", tmp_path / "r.json"
    rc = compress_main([str(p), "--out", str(out), "--scene", SCENE, "--downscale", "8", "--max-views", "1",
                        "--report", str(rj)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "smaller than the .ply" in text and "PSNR" in text
    rep = json.loads(rj.read_text())
    ev = rep["eval"]
    assert ev["views"] == 1 and ev["psnr_compressed_vs_original"] > 30
    assert 0 < ev["ssim_compressed_vs_original"] <= 1
    assert math.isfinite(ev["psnr_original_vs_gt"])
    assert rep["ply_bytes"] > rep["sizes"]["total"]


@pytest.mark.parametrize("case", ["missing", "garbage", "bad_ext", "no_dir", "bad_scene"])
def test_cli_errors_are_one_line(tmp_path, capsys, ply, case):
    out = str(tmp_path / "o.sog")
    src = str(ply)
    extra = []
    if case == "missing":
        src = str(tmp_path / "nope.ply")
    elif case == "garbage":
        src = str(tmp_path / "g.ply")
        open(src, "wb").write(b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nend_header\nxx")
    elif case == "bad_ext":
        out = str(tmp_path / "o.png")
    elif case == "no_dir":
        out = str(tmp_path / "no" / "such" / "o.sog")
    elif case == "bad_scene":
        extra = ["--scene", str(tmp_path / "nodata"), "--order", "morton"]
    rc = compress_main([src, "--out", out] + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("splatlab compress: error:") and "\n" not in err, err
    if case != "bad_scene":
        assert not os.path.exists(out)


def test_auto_means_bits_from_the_log_span():
    from splatlab.compress.pipeline import auto_means_bits

    def span(t):  # positions whose log-space t = sign(v) ln(1 + |v|) spans [-t/2, t/2] on x
        v = np.expm1(t / 2)
        return np.array([[-v, 0, 0], [v, 0, 0]])

    assert auto_means_bits(span(2.0)) == 12  # 2 * 1024 steps -> 11 bits, floor 12
    assert auto_means_bits(span(12.8)) == 14  # garden: 13,107 steps of 1/1024
    assert auto_means_bits(span(16.0)) == 14  # exactly 2^14 steps
    assert auto_means_bits(span(16.5)) == 15
    assert auto_means_bits(span(200.0)) == 16  # capped
    assert auto_means_bits(np.zeros((5, 3))) == 12
