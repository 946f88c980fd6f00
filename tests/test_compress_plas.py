"""PLAS grid sorting: permutation, quality vs random / Morton, padding, errors."""
import numpy as np
import pytest

from splatlab.compress.plas import (morton_grid_init, neighbour_distance, plas_sort, sort_keys, standardize)
from splatlab.io import morton_order, sog_texture_size


def smooth_field(n, seed=0):
    """Points on a sphere shell with attributes that vary smoothly with position."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    colour = np.stack([np.sin(3 * p[:, 0]), np.cos(2 * p[:, 1]), p[:, 2] ** 2], 1)
    scale = 0.5 * p[:, :2] + 0.05 * rng.normal(size=(n, 2))
    return p, np.concatenate([p, colour, scale], 1)


def is_perm(order, n):
    return order.shape == (n,) and np.array_equal(np.sort(order), np.arange(n))


def test_returns_permutation_nonsquare_grid():
    x = np.random.default_rng(1).normal(size=(500, 5))
    res = plas_sort(x, 30, 20, seed=3)
    assert is_perm(res.order, 500)
    assert (res.width, res.height) == (30, 20)
    g = res.grid
    assert g.shape == (20, 30) and (g.reshape(-1)[500:] == -1).all()
    assert res.radii > 1 and res.passes >= res.radii


def test_default_grid_is_sog_texture_and_deterministic():
    x = np.random.default_rng(2).normal(size=(300, 4))
    a, b = plas_sort(x, seed=5), plas_sort(x, seed=5)
    assert (a.width, a.height) == sog_texture_size(300)
    assert np.array_equal(a.order, b.order)


def test_better_than_random_and_morton_on_smooth_field():
    n = 1600
    pos, feats = smooth_field(n)
    f = standardize(feats)
    w, h = sog_texture_size(n)
    res = plas_sort(f, w, h, standardized=True, seed=0)
    d_plas = neighbour_distance(f, res.order, w, h)
    d_rand = neighbour_distance(f, np.random.default_rng(0).permutation(n), w, h)
    d_morton = neighbour_distance(f, morton_order(pos), w, h)
    assert d_plas < 0.5 * d_rand
    assert d_plas <= d_morton
    # a warm start from the 2-D Morton layout is a permutation too and also beats Morton
    init = morton_grid_init(pos, w, h)
    assert is_perm(init, n)
    res2 = plas_sort(f, w, h, standardized=True, init_order=init, radius_start=8)
    assert is_perm(res2.order, n)
    assert neighbour_distance(f, res2.order, w, h) <= d_morton


def test_tiny_and_degenerate_inputs():
    assert is_perm(plas_sort(np.zeros((3, 2))).order, 3)
    assert is_perm(plas_sort(np.ones((50, 3))).order, 50)  # constant features
    assert is_perm(plas_sort(np.arange(40.0)).order, 40)  # 1-D input


def test_errors():
    with pytest.raises(ValueError, match="cannot hold"):
        plas_sort(np.zeros((10, 2)), 3, 3)
    with pytest.raises(ValueError, match="NaN"):
        plas_sort(np.array([[0.0, np.nan]] * 8))
    with pytest.raises(ValueError, match="permutation"):
        plas_sort(np.zeros((8, 2)), init_order=np.zeros(8, int))
    with pytest.raises(ValueError, match="N > 0"):
        plas_sort(np.zeros((0, 2)))


def test_sort_keys_shapes():
    from splatlab.gaussians import Gaussians
    import torch
    g = Gaussians.from_points(torch.randn(20, 3), torch.rand(20, 3), torch.full((20,), 0.01), sh_degree=1)
    assert sort_keys(g).shape == (20, 14)
    assert sort_keys(g, ("means", "sh0", "scales")).shape == (20, 9)
    with pytest.raises(ValueError, match="unknown sort key"):
        sort_keys(g, ("colour",))
