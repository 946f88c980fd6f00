"""Splat importance (blending weight in the training views), pruning by it, and weighted codebooks."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from splatlab.compress.importance import least_visible, splat_importance
from splatlab.compress.pipeline import CompressOptions, compress, compress_scene, training_scene_of
from splatlab.gaussians import Gaussians
from splatlab.io import write_splats
from splatlab.io._common import SceneArrays
from splatlab.io.sog import kmeans_1d, kmeans_rows, read_sog_arrays
from splatlab.render import rasterize


def cameras(n=3, size=48):
    """n cameras on a circle at distance 4 looking at the origin."""
    vms = []
    for k in range(n):
        a = 2 * math.pi * k / n
        eye = torch.tensor([4 * math.sin(a), 0.3, 4 * math.cos(a)])
        f = -eye / eye.norm()
        r = torch.linalg.cross(f, torch.tensor([0.0, 1.0, 0.0]))
        r = r / r.norm()
        u = torch.linalg.cross(r, f)
        R = torch.stack([r, -u, f])  # camera x right, y down, z forward
        vm = torch.eye(4)
        vm[:3, :3] = R
        vm[:3, 3] = -R @ eye
        vms.append(vm)
    K = torch.tensor([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1.0]])
    return torch.stack(vms), K.expand(n, 3, 3).clone(), size


def splats(n=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = Gaussians(torch.randn(n, 3, generator=gen) * 0.5, torch.randn(n, 4, generator=gen),
                  torch.randn(n, 3, generator=gen) * 0.4 - 2.5, torch.randn(n, generator=gen) * 2,
                  torch.rand(n, 1, 3, generator=gen), torch.zeros(n, 0, 3))
    return g


def test_importance_is_the_summed_blending_weight():
    """The gradient-based weights equal what a forward render with one-hot colours sums to: splat i
    coloured 1 in channel j, everything else 0, gives channel j = sum alpha_i T_i per pixel."""
    g = splats()
    vm, K, size = cameras()
    imp = splat_importance(g, vm, K, size, size, batch=2)
    assert imp.shape == (len(g),) and (imp >= 0).all() and (imp > 0).sum() > len(g) // 2
    pick = torch.tensor([0, 5, 17, 42, 99, 150, 201, 299])
    onehot = torch.zeros(len(g), len(pick))
    onehot[pick, torch.arange(len(pick))] = 1.0
    with torch.no_grad():
        img, _, _ = rasterize(g.means, g.quats, g.scales, g.opacities, onehot, vm, K, size, size)
    ref = img.sum(dim=(0, 1, 2)).double().numpy()
    np.testing.assert_allclose(imp[pick.numpy()], ref, rtol=1e-4, atol=1e-6)


def test_importance_of_an_occluded_splat_closed_form():
    """A small splat right behind a large flat one that covers it: its weight is its own alpha sum
    times (1 - opacity of the front splat), since the front splat's alpha is its opacity there."""
    means = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0]])  # splat 0 at depth 4.0, the wall at 3.5
    quats = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    scales = torch.log(torch.tensor([[0.03, 0.03, 0.03], [20.0, 20.0, 1e-3]]))
    op = torch.tensor([0.9, 0.3])
    vm = torch.eye(4)[None].clone()
    vm[0, 2, 3] = 3.5  # camera at z = -3.5 looking along +z
    K = torch.tensor([[[64.0, 0, 32], [0, 64.0, 32], [0, 0, 1]]])
    g = Gaussians(means, quats, scales, torch.logit(op), torch.zeros(2, 1, 3), torch.zeros(2, 0, 3))
    imp = splat_importance(g, vm, K, 64, 64)
    alone = splat_importance(Gaussians(means[:1], quats[:1], scales[:1], torch.logit(op[:1]),
                                       torch.zeros(1, 1, 3), torch.zeros(1, 0, 3)), vm, K, 64, 64)
    assert alone[0] > 1.0
    np.testing.assert_allclose(imp[0], alone[0] * (1 - 0.3), rtol=2e-3)


def test_least_visible_takes_the_smallest_weights_below_the_share():
    w = np.array([5.0, 0.0, 1.0, 0.5, 0.25, 100.0, 0.25])
    m = least_visible(w, 0.01)  # total 107: below 1.07 -> 0, 0.25, 0.25 (0.5) and 0.5 (1.0); not 1.0
    assert m.tolist() == [False, True, False, True, True, False, True]
    assert not least_visible(w, 0.0).any() and not least_visible(np.zeros(3), 0.5).any()


def test_weighted_kmeans_closed_form():
    # k = 2 on {0, 1, 10, 11}: clusters {0, 1} and {10, 11}, each centre its weighted mean
    cb, lab = kmeans_1d(np.array([0.0, 1.0, 10.0, 11.0]), k=2, weights=np.array([1.0, 3.0, 1.0, 1.0]))
    np.testing.assert_allclose(cb, [0.75, 10.5], atol=1e-6)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 3.0]])
    cent = kmeans_rows(x, 2, iterations=5, weights=np.array([3.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(cent[np.argsort(cent[:, 0])], [[0.0, 0.25], [10.0, 1.5]], atol=1e-6)
    with pytest.raises(ValueError):
        kmeans_1d(np.arange(300.0), weights=-np.ones(300))


def test_weighted_codebooks_favour_the_weighted_splats():
    """Weights on the 10% of values in the tail (where a uniform fit puts few entries) cut their error."""
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.uniform(2.0, 3.0, 2000), rng.normal(size=18000)])
    w = np.where(np.arange(v.size) < 2000, 1.0, 1e-3)
    errs = []
    for weights in (None, w):
        cb, lab = kmeans_1d(v, k=16, weights=weights)
        errs.append(np.mean((cb[lab[:2000]] - v[:2000]) ** 2))
    assert errs[1] < 0.5 * errs[0]


def test_compress_prunes_least_seen_and_weights_codebooks(tmp_path):
    g = splats(600, seed=3)
    vm, K, size = cameras(4)
    imp = splat_importance(g, vm, K, size, size)
    scene = SceneArrays.from_gaussians(g)
    opts = CompressOptions(order="morton", sh_iterations=2, drop_invisible=False, prune_fraction=0.01)
    rep = compress_scene(scene, tmp_path / "a.sog", opts, importance=imp)
    expect = least_visible(imp, 0.01)
    assert rep["dropped_unseen"] == int(expect.sum()) > 0 and rep["count"] == 600 - expect.sum()
    dec = read_sog_arrays(tmp_path / "a.sog")
    kept = scene.take(np.flatnonzero(~expect))
    _, j = cKDTree(kept.means).query(dec.means)  # the survivors are exactly the kept splats
    assert np.array_equal(np.sort(j), np.arange(len(kept)))
    # weighted vs uniform codebooks: the importance-weighted scale error is lower
    err = {}
    for weighted in (False, True):
        o = CompressOptions(order="morton", sh_iterations=2, drop_invisible=False, prune_fraction=0.0,
                            weighted_codebooks=weighted)
        compress_scene(scene, tmp_path / "w.sog", o, importance=imp)
        d = read_sog_arrays(tmp_path / "w.sog")
        _, j = cKDTree(scene.means).query(d.means)  # decoded row -> original row
        e = ((d.scales - scene.scales[j]) ** 2).sum(1)
        err[weighted] = float((e * imp[j]).sum() / imp.sum())
    assert err[True] < err[False]


def test_training_scene_found_from_metrics_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (run / "metrics.json").write_text(json.dumps({"config": {"scene": str(data), "downscale": 2}}))
    assert training_scene_of(run / "point_cloud.ply") == (str(data), 2)
    (run / "metrics.json").write_text(json.dumps({"config": {"scene": str(tmp_path / "gone")}}))
    assert training_scene_of(run / "point_cloud.ply") is None
    (run / "metrics.json").write_text("{not json")
    assert training_scene_of(run / "point_cloud.ply") is None


def test_compress_without_views_neither_prunes_nor_weights(tmp_path):
    p = tmp_path / "s.ply"
    write_splats(p, splats(300))
    rep = compress(p, tmp_path / "s.sog", CompressOptions(order="morton", sh_iterations=2))
    assert rep["dropped_unseen"] == 0 and "importance" not in rep


def test_compress_finds_the_training_views_of_a_run_folder(tmp_path):
    import os
    robot = os.path.join(os.path.dirname(__file__), "..", "scenes", "robot")
    run = tmp_path / "run"
    run.mkdir()
    write_splats(run / "point_cloud.ply", splats(300))
    (run / "metrics.json").write_text(json.dumps({"config": {"scene": robot, "downscale": 8}}))
    opts = CompressOptions(order="morton", sh_iterations=2, prune_fraction=0.05)
    rep = compress(run / "point_cloud.ply", tmp_path / "a.sog", opts)
    assert rep["importance"]["views"] > 10 and rep["dropped_unseen"] > 0
    assert any("metrics.json" in n for n in rep["notes"])
    off = compress(run / "point_cloud.ply", tmp_path / "b.sog", opts, auto_scene=False)
    assert "importance" not in off and off["dropped_unseen"] == 0
    empty = tmp_path / "empty_scene"
    empty.mkdir()  # exists but holds no dataset: compress still works, and says why
    (run / "metrics.json").write_text(json.dumps({"config": {"scene": str(empty)}}))
    rep = compress(run / "point_cloud.ply", tmp_path / "c.sog", opts)
    assert "importance" not in rep and any("could not load" in n for n in rep["notes"])
