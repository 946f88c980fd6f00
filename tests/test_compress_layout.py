"""PLAS kernels against plain numpy references; SOG layout choice and position bits against the
decoded files."""
import math

import numpy as np
import pytest

from splatlab.compress import plas as P
from splatlab.compress.pipeline import CompressOptions, compress_scene
from splatlab.io._common import SceneArrays
from splatlab.io.sog import read_sog_arrays, read_sog_meta

from test_compress_pipeline import scene


def _reference_blur(vals, frozen, H, W, sigma):
    """Masked (normalized) Gaussian blur with zero padding, by direct 2-D summation."""
    k = P._gauss_kernel(sigma).astype(np.float64)
    r = (len(k) - 1) // 2
    D = vals.shape[1]
    g = vals[:, :D].astype(np.float64).reshape(H, W, D) * (~frozen).reshape(H, W, 1)
    m = (~frozen).astype(np.float64).reshape(H, W)
    num = np.zeros_like(g)
    den = np.zeros_like(m)
    gp = np.pad(g, ((r, r), (r, r), (0, 0)))
    mp = np.pad(m, ((r, r), (r, r)))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            w = k[dy + r] * k[dx + r]
            num += w * gp[r + dy:r + dy + H, r + dx:r + dx + W]
            den += w * mp[r + dy:r + dy + H, r + dx:r + dx + W]
    return (num / den[..., None]).reshape(H * W, D)


@pytest.mark.parametrize("radius", [1, 3, 8])
def test_blur_matches_direct_masked_convolution(radius):
    H, W, D, n = 23, 37, 5, 23 * 37 - 30
    rng = np.random.default_rng(radius)
    frozen = np.zeros(H * W, bool)
    frozen[n:] = True
    vals = np.zeros((H * W, P._padded_columns(D)), np.float32)
    vals[:n, :D] = rng.normal(size=(n, D))
    out = P._Blurrer(H, W, D, frozen, out_columns=vals.shape[1])(vals, radius)
    ref = _reference_blur(vals[:, :D], frozen, H, W, P.blur_sigma(radius))
    assert np.abs(out[:n, :D] - ref[:n]).max() < 1e-4
    assert (out[:, D:] == 0).all()  # padding columns stay zero, so they add nothing to costs


def test_swap_pass_reports_the_true_cost_decrease_and_keeps_rows_with_ids():
    H, W, D, n = 40, 44, 7, 40 * 44 - 50
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(n, D)).astype(np.float32)
    frozen = np.zeros(H * W, bool)
    frozen[n:] = True
    idx = np.full(H * W, -1, np.int64)
    idx[:n] = rng.permutation(n)
    vals = np.zeros((H * W, P._padded_columns(D)), np.float32)
    vals[:n, :D] = feats[idx[:n]]
    target = P._Blurrer(H, W, D, frozen, out_columns=vals.shape[1])(vals, 4).copy()

    def cost(v):
        return float(((v[:n, :D].astype(np.float64) - target[:n, :D]) ** 2).sum())

    before = cost(vals)
    gain, total = P._swap_pass(vals, idx, target, frozen, H, W, 16, 5, 3, 7, P._PERMS)
    after = cost(vals)
    assert gain > 0 and after < before
    assert math.isclose(before - after, gain, rel_tol=1e-3)
    assert total <= before * (1 + 1e-5)  # groups cover each unfrozen cell at most once
    assert np.array_equal(vals[:n, :D], feats[idx[:n]])  # rows moved together with their ids
    assert (idx[n:] == -1).all() and np.array_equal(np.sort(idx[:n]), np.arange(n))


def _rows(a: SceneArrays) -> np.ndarray:
    x = np.concatenate([a.means, a.quats, a.scales, a.opacities[:, None], a.sh0.reshape(len(a), -1),
                        a.shN.reshape(len(a), -1)], 1)
    return x[np.lexsort(x.T[::-1])]


def test_plas_and_morton_layouts_decode_to_the_same_splats(tmp_path):
    s = SceneArrays.from_gaussians(scene(700, sh=0.3, seed=4))
    r_p = compress_scene(s, tmp_path / "p.sog", CompressOptions(auto_sh=False, morton_fallback=False,
                                                                  sh_iterations=3))
    r_m = compress_scene(s, tmp_path / "m.sog", CompressOptions(order="morton", auto_sh=False, sh_iterations=3))
    r_a = compress_scene(s, tmp_path / "a.sog", CompressOptions(auto_sh=False, sh_iterations=3))
    assert r_p["order_used"] == "plas" and r_m["order_used"] == "morton"
    dec = [read_sog_arrays(tmp_path / f) for f in ("p.sog", "m.sog", "a.sog")]
    assert np.array_equal(_rows(dec[0]), _rows(dec[1])) and np.array_equal(_rows(dec[0]), _rows(dec[2]))
    c = r_a["candidate_bytes"]
    assert r_a["sizes"]["total"] - r_a["sizes"]["container"] == min(c.values())  # kept the smaller
    assert r_a["order_used"] == min(c, key=c.get)


@pytest.mark.parametrize("bits", [16, 14, 11])
def test_means_bits_error_bound_and_low_byte(tmp_path, bits):
    s = SceneArrays.from_gaussians(scene(500, sh=0.0, seed=1))
    out = tmp_path / "b.sog"
    compress_scene(s, out, CompressOptions(order="morton", means_bits=bits, auto_sh=False))
    meta = read_sog_meta(out)
    dec = read_sog_arrays(out)
    from scipy.spatial import cKDTree
    _, j = cKDTree(s.means).query(dec.means)
    assert np.array_equal(np.sort(j), np.arange(len(s)))
    t = lambda v: np.sign(v) * np.log1p(np.abs(v.astype(np.float64)))  # noqa: E731
    rng = np.array(meta["means"]["maxs"]) - np.array(meta["means"]["mins"])
    step = 2 ** (16 - bits)
    err = np.abs(t(dec.means) - t(s.means[j]))
    bound = rng * (step - 1 if step > 1 else 0.5) / 65535 + 1e-6
    assert (err <= bound).all()
    if bits < 16:  # the rounding is really used: the errors reach beyond the 16-bit half step
        assert (err > rng * 0.5 / 65535 + 1e-6).any()
