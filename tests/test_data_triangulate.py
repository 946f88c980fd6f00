"""Known-pose triangulation: closed-form geometry, track building, and a real run on bundled views."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from splatlab.cameras import look_at
from splatlab.data.triangulate import tracks_from_matches, triangulate_tracks


def _cameras(n: int, radius: float = 4.0):
    vms, Ks = [], []
    for i in range(n):
        a = 2 * np.pi * i / n
        eye = torch.tensor([radius * np.cos(a), radius * np.sin(a), 1.0])
        vms.append(look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0])).double().numpy())
        Ks.append(np.array([[200.0, 0, 64], [0, 200.0, 64], [0, 0, 1]]))
    return np.stack(vms), np.stack(Ks)


def _project(vm, K, p):
    c = vm[:3, :3] @ p + vm[:3, 3]
    return np.array([K[0, 0] * c[0] / c[2] + K[0, 2], K[1, 1] * c[1] / c[2] + K[1, 2]])


def test_triangulate_tracks_recovers_points_and_flags_bad_ones():
    rng = np.random.default_rng(0)
    vms, Ks = _cameras(6)
    pts = rng.uniform(-0.8, 0.8, (50, 3))
    track, view, xy = [], [], []
    for t, p in enumerate(pts):
        for v in rng.choice(6, size=rng.integers(2, 5), replace=False):
            track.append(t), view.append(v), xy.append(_project(vms[v], Ks[v], p))
    track, view, xy = np.array(track), np.array(view), np.array(xy)
    xy_bad = xy.copy()
    first_of_0 = np.nonzero(track == 0)[0][0]
    xy_bad[first_of_0] += 25.0  # one wrong observation in track 0
    out, err, depth, spread = triangulate_tracks(track, xy, vms, Ks, view)
    np.testing.assert_allclose(out, pts, atol=1e-5)  # look_at is float32
    assert err.max() < 1e-3 and (depth > 0).all() and (spread > 5).all()
    _, err_bad, _, _ = triangulate_tracks(track, xy_bad, vms, Ks, view)
    assert err_bad[0] > 5 and err_bad[1:].max() < 1e-3


def test_tracks_join_pairs_and_drop_ambiguous_ones():
    # views 0,1,2 with 3 keypoints each; (0:0)-(1:0)-(2:0) is one track of length 3,
    # (0:1)-(1:1) a pair, and keypoint 2 of view 0 matches two keypoints of view 1 (ambiguous).
    matches = [(0, 1, np.array([[0, 0], [1, 1], [2, 2]])), (1, 2, np.array([[0, 0]])),
               (0, 1, np.array([[2, 2]])), (2, 1, np.array([[2, 2], [1, 2]])), (0, 2, np.array([[2, 1]]))]
    track, view, kp = tracks_from_matches([3, 3, 3], matches)
    tracks = {}
    for t, v, k in zip(track, view, kp):
        tracks.setdefault(int(t), set()).add((int(v), int(k)))
    assert sorted(map(sorted, tracks.values())) == [[(0, 0), (1, 0), (2, 0)], [(0, 1), (1, 1)]]


def test_triangulated_points_land_on_the_object(tmp_path):
    """Points from 24 robot views must project inside the ground-truth alpha masks of held-out views."""
    pytest.importorskip("pycolmap")
    from splatlab.data import load_scene
    from splatlab.data.triangulate import triangulate_scene

    scene = load_scene("scenes/robot")
    scene.train = scene.train.subset(list(range(24)))
    result = triangulate_scene(scene, log=lambda *a: None)
    assert len(result.points) > 100
    test = scene.test
    inside = []
    for i in range(0, len(test), 5):
        alpha = test.load_alpha(i).reshape(test.height, test.width).numpy()
        vm, K = test.cameras.viewmats[i].double().numpy(), test.cameras.Ks[i].double().numpy()
        cam = result.points.astype(np.float64) @ vm[:3, :3].T + vm[:3, 3]
        u = (K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]).astype(int)
        v = (K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]).astype(int)
        ok = (u >= 0) & (u < alpha.shape[1]) & (v >= 0) & (v < alpha.shape[0])
        inside.append((alpha[v[ok], u[ok]] > 0.5).mean())
    assert np.mean(inside) > 0.95, inside
    # colours come from the photos: the object is not a flat grey
    assert result.colors.std(axis=0).mean() > 20
