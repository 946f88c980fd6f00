"""Hierarchical Gaussians: the child formula by hand, monotone scales, the LOD cut against a
hand-computed projected size, tree-consistent densification on a hand-made tree, exported cuts
read back by our reader and by splat-transform, and the LOD count falling with distance."""
from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from splatlab.cameras import Cameras
from splatlab.densify import ops
from splatlab.gaussians import Gaussians, MethodSpec
from splatlab.io import read_splats, write_splats
from splatlab.io.cli import export_main
from splatlab.methods import hierarchical as hier
from splatlab.methods import make_method
from splatlab.render import render
from splatlab.render.api import rasterize
from splatlab.render.cli import render_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLAT_TRANSFORM = os.path.join(ROOT, ".tools", "node_modules", ".bin", "splat-transform")


def make_tree(fields: dict[str, list], level: list[int], parent: list[int], spec: dict | None = None) -> Gaussians:
    n = len(level)
    f = {k: torch.tensor(v, dtype=torch.float32) for k, v in fields.items()}
    f.setdefault("shN", torch.zeros((n, 3, 3)))
    f[hier.LEVEL] = torch.tensor(level, dtype=torch.float32)
    f[hier.PARENT] = torch.tensor(parent, dtype=torch.float32)
    return Gaussians.from_fields(f, MethodSpec("hierarchical", spec or {}))


def random_tree(n_roots: int = 20, k: int = 3, levels: int = 3, seed: int = 0) -> Gaussians:
    """Roots spread in a unit cube around the origin, each level k children with random residuals."""
    gen = torch.Generator().manual_seed(seed)
    level, parent = [0] * n_roots, [-1] * n_roots
    for lv in range(1, levels):
        ids = [i for i, l in enumerate(level) if l == lv - 1]
        for i in ids:
            level += [lv] * k
            parent += [i] * k
    n = len(level)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    is_root = torch.tensor(parent) < 0
    means = torch.where(is_root[:, None], torch.rand(n, 3, generator=gen) - 0.5, r(n, 3))
    scales = torch.where(is_root[:, None], torch.full((n, 3), math.log(0.15)), r(n, 3))
    return make_tree({"means": means.tolist(), "quats": (r(n, 4) + torch.tensor([3.0, 0, 0, 0])).tolist(),
                      "scales": scales.tolist(), "opacities": (r(n) + 2).tolist(),
                      "sh0": (0.5 * r(n, 1, 3)).tolist()}, level, parent)


def rotmat(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def test_child_formula_by_hand():
    c, s = math.cos(math.pi / 8), math.sin(math.pi / 8)  # parent: 45 degrees about z
    qp, qr = [c, 0.0, 0.0, s], [0.9, 0.3, -0.2, 0.1]
    g = make_tree({"means": [[1.0, 2.0, 3.0], [0.4, -1.2, 0.7]], "quats": [qp, qr],
                   "scales": [[math.log(0.5), math.log(0.2), math.log(0.1)], [0.3, -1.0, 2.0]],
                   "opacities": [0.5, -0.25], "sh0": [[[0.1, 0.2, 0.3]], [[0.01, -0.02, 0.5]]]},
                  level=[0, 1], parent=[-1, 0])
    a = hier.resolve(g)
    S = np.array([0.5, 0.2, 0.1])
    want_mean = np.array([1.0, 2.0, 3.0]) + rotmat(qp) @ (S * np.tanh([0.4, -1.2, 0.7]))
    np.testing.assert_allclose(a["means"][1].detach().numpy(), want_mean, atol=1e-6)
    softplus = np.log1p(np.exp([0.3, -1.0, 2.0]))
    np.testing.assert_allclose(a["log_scales"][1].detach().numpy(), np.log(S) - softplus, atol=1e-6)
    np.testing.assert_allclose(rotmat(a["quats"][1].detach().numpy()), rotmat(qp) @ rotmat(qr), atol=1e-6)
    assert a["logits"][1].item() == pytest.approx(0.25)
    np.testing.assert_allclose(a["sh"][1, 0].detach().numpy(), [0.11, 0.18, 0.8], atol=1e-6)
    # the root is its own parameters
    np.testing.assert_allclose(a["means"][0].detach().numpy(), [1.0, 2.0, 3.0])


def test_scales_shrink_monotonically_and_children_stay_near():
    g = random_tree(levels=4)
    a = hier.resolve(g)
    level, parent = hier.tree_of(g)
    kids = parent >= 0
    ls, pls = a["log_scales"][kids], a["log_scales"][parent[kids]]
    assert bool((ls < pls).all())
    # |offset| <= |R S tanh| <= ||S|| (tanh bounded by 1)
    dist = (a["means"][kids] - a["means"][parent[kids]]).norm(dim=-1)
    assert bool((dist <= pls.exp().norm(dim=-1) + 1e-6).all())


def camera_at(distance: float, focal: float = 100.0, size: int = 64) -> Cameras:
    """A camera on the -z axis looking at the origin (+z forward)."""
    vm = torch.eye(4)
    vm[2, 3] = distance
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    return Cameras(vm[None], K[None], size, size)


def test_lod_cut_against_hand_projected_size():
    # root at the origin, scale 0.1: seen from 5 units with f=100 it is 100*0.3/5 = 6 px
    g = make_tree({"means": [[0, 0, 0], [1, 0, 0], [-1, 0, 0]], "quats": [[1, 0, 0, 0]] * 3,
                   "scales": [[math.log(0.1)] * 3, [0.0] * 3, [0.0] * 3], "opacities": [2, 0, 0],
                   "sh0": [[[0, 0, 0]]] * 3}, level=[0, 1, 1], parent=[-1, 0, 0])
    a = hier.resolve(g)
    size = hier.projected_size(a["means"], a["log_scales"], camera_at(5.0))[0]
    assert size[0].item() == pytest.approx(6.0, rel=1e-5)
    level, parent = hier.tree_of(g)
    assert hier.lod_cut(level, parent, size, 6.5).tolist() == [0]  # small enough: the root alone
    assert hier.lod_cut(level, parent, size, 5.5).tolist() == [1, 2]  # too big: its children
    # the same through the render path: options decide which rows are drawn
    m = make_method("hierarchical", {"lod": 5.5})
    passes = m.render_passes(g, camera_at(5.0), hier.RenderContext(False, None, 0))
    assert [p.index.tolist() for p in passes] == [[1, 2]]
    far = make_method("hierarchical", {"lod": 5.5}).render_passes(g, camera_at(20.0), hier.RenderContext(False, None, 0))
    assert [p.index.tolist() for p in far] == [[0]]  # 1.5 px from 20 units


def test_lod_count_drops_with_distance_and_render_matches_baked_cut():
    g = random_tree(n_roots=30, k=4, levels=3)
    counts = []
    for d in (2.0, 8.0, 32.0, 128.0):  # roots (3σ = 0.45) are 22, 5.6, 1.4, 0.35 px
        cams = camera_at(d)
        out = render(g, cams, background=torch.zeros(3))  # default: finest level
        g.method = MethodSpec("hierarchical", {"lod": 4.0})
        lod = render(g, cams, background=torch.zeros(3))
        rows = hier.cut_for_cameras(g, cams, 4.0)
        counts.append(len(rows))
        plain = hier.bake(g, rows)
        ref, _, _ = rasterize(viewmats=cams.viewmats, Ks=cams.Ks, width=cams.width, height=cams.height,
                              means=plain.means, quats=plain.quats, scales=plain.scales,
                              opacities=plain.opacities, colors=plain.sh_coeffs, sh_degree=plain.sh_degree,
                              backgrounds=torch.zeros(1, 3))
        torch.testing.assert_close(lod.images, ref, atol=1e-5, rtol=0)
        g.method = MethodSpec("hierarchical", {})
        assert out.images.std() > 0.01
    assert counts[0] > counts[1] > counts[2] >= counts[3]
    assert counts[0] <= 30 * (1 + 4 + 16) and counts[-1] == 30  # far away: only the roots



def cameras_at(distances, focal: float = 100.0, size: int = 48) -> Cameras:
    """Cameras on the -z axis at several distances, slightly off-axis so each view differs."""
    vms = []
    for i, d in enumerate(distances):
        vm = torch.eye(4)
        vm[0, 3], vm[2, 3] = 0.1 * i, d
        vms.append(vm)
    K = torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]])
    return Cameras(torch.stack(vms), K[None].expand(len(vms), 3, 3), size, size)


def test_lod_batch_is_one_rasterize_call_equal_to_per_view_renders_of_each_cut(monkeypatch):
    import splatlab.render.path as path

    g = random_tree(n_roots=30, k=4, levels=3, seed=1)
    cams = cameras_at([2.0, 8.0, 32.0])  # three different cuts in one batch
    g.method = MethodSpec("hierarchical", {"lod": 4.0})
    calls = []
    real = path.rasterize
    monkeypatch.setattr(path, "rasterize", lambda **kw: calls.append(kw["viewmats"].shape[0]) or real(**kw))
    with torch.no_grad():
        batch = render(g, cams, background=torch.zeros(3)).images
    assert calls == [3], calls  # one call for the whole batch, not one per view
    a = hier.resolve(g)
    size = hier.projected_size(a["means"], a["log_scales"], cams)
    level, parent = hier.tree_of(g)
    counts = []
    for i in range(len(cams)):  # reference: each view alone, on its own cut baked to plain 3DGS
        rows = hier.lod_cut(level, parent, size[i], 4.0)
        counts.append(len(rows))
        plain = hier.bake(g, rows)
        ref, _, _ = rasterize(viewmats=cams.viewmats[i:i + 1], Ks=cams.Ks[i:i + 1], width=cams.width,
                              height=cams.height, means=plain.means, quats=plain.quats, scales=plain.scales,
                              opacities=plain.opacities, colors=plain.sh_coeffs, sh_degree=plain.sh_degree,
                              backgrounds=torch.zeros(1, 3))
        torch.testing.assert_close(batch[i:i + 1], ref, atol=1e-5, rtol=0)
    assert counts[0] > counts[1] > counts[2]  # the views really drew different cuts
    # the vectorised masks agree with a per-view hand loop over the tree
    masks = hier.lod_masks(level, parent, size, 4.0)
    for i in range(len(cams)):
        assert torch.nonzero(masks[i]).reshape(-1).tolist() == hier.lod_cut(level, parent, size[i], 4.0).tolist()


def test_lod_select_walk_equals_dense_masks_of_every_row():
    """The top-down walks (sizes only of nodes some view reached; compiled and in tensor ops)
    against `lod_masks` over every row, itself held to the per-view hand loop above: same union
    rows, same per-view membership, for near, far, mixed and behind-the-camera views, thresholds
    from all-roots to all-leaves and thresholds equal to a node's own size (the boundary)."""
    for seed, (n_roots, k, levels) in enumerate([(30, 4, 3), (6, 3, 4), (12, 1, 3)]):
        g = random_tree(n_roots=n_roots, k=k, levels=levels, seed=seed)
        level, parent = hier.tree_of(g)
        a = hier.resolve(g)
        forest = hier.Forest.build(level, parent, a)
        cams = cameras_at([0.3, 1.0, 2.0, 8.0, 32.0, -5.0])  # -5: the tree is behind the camera
        sizes = hier.projected_size(a["means"], a["log_scales"], cams)
        finite = sizes[torch.isfinite(sizes)]
        for thr in (0.1, 1.0, 4.0, 16.0, 1e4, *finite[:: max(1, len(finite) // 7)].tolist()):
            masks = hier.lod_masks(level, parent, sizes, thr)
            rows = torch.nonzero(masks.any(dim=0), as_tuple=True)[0]
            for select in (hier.lod_select, hier.lod_select_tensors):  # compiled walk, tensor walk
                got_rows, got_vis = select(forest, cams, thr)
                assert got_rows.tolist() == rows.tolist()
                assert torch.equal(got_vis, masks[:, rows])
        assert hier.lod_select(forest, cameras_at([32.0]), 1e4)[0].tolist() == list(range(n_roots))  # the roots
        leaves = torch.nonzero(~hier.has_children(parent, len(g)), as_tuple=True)[0]
        assert hier.lod_select(forest, cameras_at([-5.0]), 1e4)[0].tolist() == leaves.tolist()  # behind: leaves


def test_rasterize_visibility_equals_per_camera_subsets():
    g = random_tree(n_roots=40, k=1, levels=1, seed=2)
    cams = cameras_at([3.0, 4.0])
    vis = torch.rand(2, len(g), generator=torch.Generator().manual_seed(0)) < 0.5
    args = dict(means=g.means.detach(), quats=g.quats.detach(), scales=g.scales.detach(),
                opacities=g.opacities.detach(), colors=g.sh_coeffs.detach(), sh_degree=1)
    img, _, meta = rasterize(viewmats=cams.viewmats, Ks=cams.Ks, width=48, height=48, visibility=vis, **args)
    for i in range(2):
        rows = torch.nonzero(vis[i]).reshape(-1)
        ref, _, _ = rasterize(viewmats=cams.viewmats[i:i + 1], Ks=cams.Ks[i:i + 1], width=48, height=48,
                              **{k: (v[rows] if torch.is_tensor(v) else v) for k, v in args.items()})
        torch.testing.assert_close(img[i:i + 1], ref, atol=1e-6, rtol=0)
    assert not bool(meta.visible[~vis].any())
    with pytest.raises(ValueError, match="visibility must be"):
        rasterize(viewmats=cams.viewmats, Ks=cams.Ks, width=48, height=48, visibility=vis[:, :3], **args)


def test_rasterize_visibility_gradients_equal_per_camera_subsets():
    """Each camera projects and prepares only its own rows: the gradients of the batch with a
    visibility mask are the sum of each camera rendered alone on its subset (rows it does not
    draw get nothing from it), including a camera that draws no row at all."""
    g = random_tree(n_roots=40, k=1, levels=1, seed=4)
    cams = cameras_at([3.0, 4.0, 5.0])
    vis = torch.rand(3, len(g), generator=torch.Generator().manual_seed(1)) < 0.5
    vis[2] = False
    fields = dict(means=g.means.detach(), quats=g.quats.detach(), scales=g.scales.detach(),
                  opacities=g.opacities.detach(), colors=g.sh_coeffs.detach())
    weight = torch.rand(3, 48, 48, 3, generator=torch.Generator().manual_seed(2))

    def leaves():
        return {k: v.clone().requires_grad_(True) for k, v in fields.items()}

    batch = leaves()
    img, _, _ = rasterize(viewmats=cams.viewmats, Ks=cams.Ks, width=48, height=48, visibility=vis, sh_degree=1,
                          backend="cpu", **batch)
    (img * weight).sum().backward()
    assert float(img[2].detach().abs().max()) == 0.0
    alone = leaves()
    for i in range(2):
        rows = torch.nonzero(vis[i]).reshape(-1)
        ref, _, _ = rasterize(viewmats=cams.viewmats[i:i + 1], Ks=cams.Ks[i:i + 1], width=48, height=48,
                              sh_degree=1, backend="cpu", **{k: v[rows] for k, v in alone.items()})
        (ref * weight[i:i + 1]).sum().backward()
    for k in fields:
        torch.testing.assert_close(batch[k].grad, alone[k].grad, atol=1e-5, rtol=1e-4)
    assert float(alone["means"].grad.abs().sum()) > 0


def test_resolved_cache_follows_in_place_edits():
    g = random_tree(n_roots=10, k=2, levels=2, seed=3)
    g.method = MethodSpec("hierarchical", {})
    cams = camera_at(3.0)
    with torch.no_grad():
        before = render(g, cams).images
        g.params["sh0"].add_(0.3)  # an in-place edit (as an optimizer step) must not hit the cache
        after = render(g, cams).images
    assert (after - before).abs().max() > 0.05

def hand_tree() -> Gaussians:
    """Roots A(0), B(1); A's children a1(2), a2(3); a1's child x(4); B's child b1(5)."""
    return Gaussians.from_fields({
        "means": torch.tensor([[0, 0, 0], [2, 0, 0], [0.5, 0, 0], [-0.5, 0, 0], [0.2, 0.1, 0], [0, 1, 0.0]]),
        "quats": torch.tensor([[1.0, 0, 0, 0]] * 6), "scales": torch.full((6, 3), -1.0),
        "opacities": torch.arange(6.0), "sh0": torch.zeros(6, 1, 3), "shN": torch.zeros(6, 0, 3),
        hier.LEVEL: torch.tensor([0, 0, 1, 1, 2, 1.0]), hier.PARENT: torch.tensor([-1, -1, 0, 0, 2, 1.0])},
        MethodSpec("hierarchical", {}))


def adam_with_row_ids(g: Gaussians) -> torch.optim.Adam:
    """Adam whose per-row state exp_avg of every field holds the row's id (to follow rows)."""
    opt = torch.optim.Adam(g.param_groups({k: 0.0 for k in g.params}))
    for name, p in g.params.items():
        ids = torch.arange(len(g), dtype=torch.float32).reshape(-1, *([1] * (p.ndim - 1))).expand_as(p)
        opt.state[p] = {"step": torch.tensor(3.0), "exp_avg": ids.clone(), "exp_avg_sq": ids.clone()}
    return opt


def test_prune_subtree_and_clone_keep_tree_and_optimizer_state_aligned():
    g = hand_tree()
    opt = adam_with_row_ids(g)
    before = {k: v.detach().clone() for k, v in hier.resolve(g).items()}
    removed = hier.remove_subtrees(g, opt, torch.tensor([False, False, True, False, False, False]))  # a1 (+ x)
    assert removed == 2
    level, parent = hier.tree_of(g)
    assert level.tolist() == [0, 0, 1, 1] and parent.tolist() == [-1, -1, 0, 1]  # A, B, a2, b1
    hier.check_tree(level, parent)
    survivors = [0, 1, 3, 5]
    after = hier.resolve(g)
    for k in before:
        torch.testing.assert_close(after[k], before[k][survivors])  # absolute attributes unchanged
    ops.check_aligned(g, opt)
    for name, p in g.params.items():
        if p.numel() == 0:
            continue
        assert opt.state[p]["exp_avg"].reshape(len(g), -1)[:, 0].tolist() == survivors, name

    hier.clone_as_siblings(g, opt, torch.tensor([False, False, True, False]))  # a2 gets a sibling
    level, parent = hier.tree_of(g)
    assert parent.tolist() == [-1, -1, 0, 1, 0] and level.tolist() == [0, 0, 1, 1, 1]
    assert opt.state[g.params["means"]]["exp_avg"][:, 0].tolist() == survivors + [0]  # new row: zero state

    gen = torch.Generator().manual_seed(0)
    hier.add_children(g, opt, torch.tensor([2, 4]), 3, 0.5, gen)
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    assert parent.tolist()[5:] == [2, 2, 2, 4, 4, 4] and level.tolist()[5:] == [2] * 6
    a = hier.resolve(g)
    # new children: the parent's opacity and colour, half its scale
    torch.testing.assert_close(a["logits"][5:], a["logits"][[2, 2, 2, 4, 4, 4]])
    torch.testing.assert_close(a["log_scales"][5:], a["log_scales"][[2, 2, 2, 4, 4, 4]] - math.log(2.0))
    ops.check_aligned(g, opt)

    # removing a root removes its whole subtree, and the rest is renumbered
    hier.remove_subtrees(g, opt, torch.tensor([True] + [False] * 10))
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    assert len(g) == 2 and parent.tolist() == [-1, 0]  # B and b1


def test_split_of_a_leaf_samples_from_its_absolute_gaussian_under_a_rotated_parent():
    """3DGS's split on a hand-made tree: a root rotated 90° about z with scales (1, 2, 0.5) and a
    leaf child at its centre with scale 0.1. Splitting the leaf gives two siblings at
    parent + R·(0.1·ε) (ε the generator's normals, in row order) with scale 0.1/1.6, the same
    colour and opacity, zero optimizer state; the root and its state are untouched."""
    c, s_ = math.cos(math.pi / 4), math.sin(math.pi / 4)
    g = make_tree({"means": [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], "quats": [[c, 0, 0, s_], [1.0, 0, 0, 0]],
                   "scales": [[0.0, math.log(2.0), math.log(0.5)], [math.log(math.expm1(math.log(x / 0.1))) for x in (1, 2, 0.5)]],
                   "opacities": [1.0, 0.5], "sh0": [[[0.1, 0.2, 0.3]], [[0.05, 0.0, -0.05]]]}, [0, 1], [-1, 0])
    opt = adam_with_row_ids(g)
    for prm in g.params.values():
        opt.state[prm]["exp_avg"] += 7.0  # row 0: 7, row 1: 8
    before = {k: v.detach().clone() for k, v in hier.resolve(g).items()}
    assert torch.allclose(before["log_scales"][1], torch.full((3,), math.log(0.1)), atol=1e-6)
    mask = torch.tensor([False, True])
    assert hier.split_in_place(g, opt, mask, torch.Generator().manual_seed(11)) == 1
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    assert parent.tolist() == [-1, 0, 0]
    eps = torch.randn((2, 3), generator=torch.Generator().manual_seed(11))
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90° about z
    want = torch.tensor([1.0, 2.0, 3.0]) + (0.1 * eps) @ rz.T
    after = hier.resolve(g)
    assert torch.allclose(after["means"][1:], want, atol=1e-5)
    assert torch.allclose(after["log_scales"][1:], torch.full((2, 3), math.log(0.1 / 1.6)), atol=1e-5)
    assert torch.allclose(after["sh"][1:], before["sh"][1].expand(2, -1, -1))
    assert torch.allclose(after["logits"][1:], before["logits"][1].expand(2))
    assert torch.equal(after["means"][0], before["means"][0])
    for name, prm in g.params.items():
        st = opt.state[prm]["exp_avg"]
        assert float(st[1:].abs().max()) == 0.0 and float(st[0].min()) == 7.0, name
    with pytest.raises(ValueError, match="only leaves"):
        hier.split_in_place(g, opt, torch.tensor([True, False, False]), torch.Generator())


def test_check_tree_rejects_broken_trees():
    with pytest.raises(ValueError, match="one level below"):
        hier.check_tree(torch.tensor([0, 2]), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="root"):
        hier.check_tree(torch.tensor([1]), torch.tensor([-1]))


def test_export_level_is_a_flat_ply_every_reader_reads(tmp_path):
    g = random_tree(n_roots=10, k=2, levels=3)
    src = tmp_path / "tree.ply"
    write_splats(src, g)
    back = read_splats(src)
    assert back.method.name == "hierarchical" and set(back.extra_names()) == {hier.LEVEL, hier.PARENT}
    out = tmp_path / "level1.ply"
    assert export_main([str(src), str(out), "-q", "--level", "1"]) == 0
    flat = read_splats(out)
    assert len(flat) == 20 and not flat.extra_names() and flat.method is None
    level, parent = hier.tree_of(back)
    want = hier.bake(back, hier.level_cut(level, parent, 1))
    for k in ("means", "quats", "scales", "opacities", "sh0"):
        torch.testing.assert_close(flat.params[k], want.params[k])
    # a .ply of the flat cut renders like the hierarchy at that level
    cams = camera_at(3.0)
    back.method = MethodSpec("hierarchical", {"level": 1})
    torch.testing.assert_close(render(flat, cams).images, render(back, cams).images, atol=1e-5, rtol=0)
    # bad requests: one line, nothing written
    assert export_main([str(src), str(tmp_path / "x.ply"), "-q", "--level", "7"]) == 1
    assert export_main([str(out), str(tmp_path / "y.ply"), "-q", "--level", "0"]) == 1
    assert not (tmp_path / "x.ply").exists() and not (tmp_path / "y.ply").exists()
    if os.access(SPLAT_TRANSFORM, os.X_OK) and shutil.which("node"):
        conv = tmp_path / "theirs.ply"
        r = subprocess.run([SPLAT_TRANSFORM, "-q", "-w", str(out), str(conv)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        theirs = read_splats(conv)
        assert len(theirs) == len(flat)
        torch.testing.assert_close(theirs.params["means"], flat.params["means"])
        torch.testing.assert_close(theirs.scales, flat.scales, rtol=1e-4, atol=1e-6)


def test_render_cli_lod_changes_the_image(tmp_path, capsys):
    g = random_tree(n_roots=30, k=4, levels=3)
    src = tmp_path / "tree.ply"
    write_splats(src, g)
    fine, coarse = tmp_path / "fine.png", tmp_path / "coarse.png"
    assert render_main([str(src), "--out", str(fine), "--width", "48", "--height", "48"]) == 0
    assert render_main([str(src), "--out", str(coarse), "--width", "48", "--height", "48", "--lod", "50"]) == 0
    from PIL import Image
    a, b = np.asarray(Image.open(fine), float), np.asarray(Image.open(coarse), float)
    assert np.abs(a - b).mean() > 1.0
    plain = tmp_path / "plain.ply"
    write_splats(plain, hier.bake(g, torch.arange(30)))
    assert render_main([str(plain), "--out", str(tmp_path / "p.png"), "--lod", "2"]) == 1
    assert "need a hierarchical scene" in capsys.readouterr().err


def budget_cfg(cap: int):
    from splatlab.train.config import TrainConfig
    # level steps: refine_start + l * (0.6 * refine_stop - refine_start) // 3 = 26 and 43
    return TrainConfig(iterations=100, refine_start=10, refine_stop=100, cap_max=cap, seed=1)


def test_new_levels_fill_their_share_of_the_budget_highest_gradient_first():
    """budget_split=even, budget 60 for 3 levels: 20 / 40 / 60 rows. Ten roots with 4 children each would need 40
    rows at the first level step (room for 30: the 7 highest-gradient roots get children); at the
    second (room 60 - 38 = 22) the 5 largest level-1 nodes do, the children of the largest roots."""
    root_scale = [0.10, 0.30, 0.20, 0.05, 0.25, 0.15, 0.12, 0.35, 0.08, 0.18]
    g = make_tree({"means": [[i * 0.3, 0, 0] for i in range(10)], "quats": [[1.0, 0, 0, 0]] * 10,
                   "scales": [[math.log(s)] * 3 for s in root_scale], "opacities": [1.0] * 10,
                   "sh0": [[[0.1, 0.2, 0.3]]] * 10}, [0] * 10, [-1] * 10)
    opt = adam_with_row_ids(g)
    m = hier.HierarchicalGaussians(hier.HierarchicalConfig(levels=3, children=4, budget_split="even"))
    c = budget_cfg(60).resolved()
    assert m.level_steps(c) == [26, 43] and [m.row_budget(c, s) for s in (25, 26, 42, 43)] == [20, 40, 40, 60]
    tree = hier.HierarchicalGaussians(hier.HierarchicalConfig(levels=3, children=4, budget_split="tree"))
    c21 = budget_cfg(2100).resolved()  # shares 1 : 4 : 16 of 21
    assert [tree.row_budget(c21, s) for s in (25, 26, 42, 43)] == [100, 500, 500, 2100]
    grad = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.05, 0.6, 0.4])
    assert m.add_level(g, opt, c, 26, grad) == 28
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    top7 = sorted(torch.argsort(grad, descending=True)[:7].tolist())  # 2, 6, 4, 8, 0, 9, 3
    assert parent[10:].tolist() == [p for p in top7 for _ in range(4)]
    assert opt.state[g.params["means"]]["exp_avg"][:10, 0].tolist() == list(range(10))  # old rows' state kept

    # no gradients: the largest nodes first; a child's scale is half its parent's, so the 5 largest
    # level-1 nodes are the (row-ordered) children of the largest expanded root, then the next one's
    assert m.add_level(g, opt, c, 43) == 20 and len(g) == 58
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    by_size = sorted(top7, key=lambda r: -root_scale[r])  # 4 (0.25), 9 (0.18), ...
    level1 = {p: [10 + 4 * i + j for j in range(4)] for i, p in enumerate(top7)}
    expect = sorted((level1[by_size[0]] + level1[by_size[1]])[:5])
    assert parent[38:].tolist() == [p for p in expect for _ in range(4)]

    # no budget: every finest node gets children
    g2 = make_tree({"means": [[0, 0, 0]] * 3, "quats": [[1.0, 0, 0, 0]] * 3, "scales": [[-2.0] * 3] * 3,
                    "opacities": [1.0] * 3, "sh0": [[[0.1, 0.2, 0.3]]] * 3}, [0] * 3, [-1] * 3)
    assert m.add_level(g2, None, budget_cfg(0).resolved(), 26) == 12


def test_mip_split_bounds_the_finest_cut_and_puts_coarser_levels_on_top():
    """budget_split=mip, hand-computed: cap_max bounds the finest cut; coarser cuts get
    cap·root_share^((L-1-l)/(L-1)). Budget 60, root_share 0.25, 3 levels: 15 / 30 / 60. Ten roots,
    4 children each: at the first level step the new cut may grow by 30 - 10 = 20, 3 per expanded
    node, so the 6 highest-gradient roots get children (cut 24 + 4 = 28); at the second, room
    60 - 28 = 32: the 10 largest level-1 nodes get children (cut 40 + 14 + 4 = 58, rows 74 > 60);
    then clones or splits may add only 2 finest Gaussians."""
    m = hier.HierarchicalGaussians(hier.HierarchicalConfig(levels=3, children=4, budget_split="mip", root_share=0.25))
    c = budget_cfg(60).resolved()
    assert [m.level_share(c, lv) for lv in range(3)] == [15, 30, 60]
    assert [m.row_budget(c, s) for s in (25, 26, 42, 43)] == [15, 45, 45, 105]
    assert m.initial_roots(c, 150) == 7 and m.initial_roots(c, 5) == 5  # half of level 0's share
    c2000 = budget_cfg(2000).resolved()  # root_share 0.05: 100 / 447 (2000·√0.05 = 447.2) / 2000
    rs05 = hier.HierarchicalGaussians(hier.HierarchicalConfig(levels=3, budget_split="mip", root_share=0.05))
    assert [rs05.level_share(c2000, lv) for lv in range(3)] == [100, 447, 2000]
    assert rs05.initial_roots(c2000, 3000) == 50
    dflt = hier.HierarchicalGaussians()  # mip, root_share 0.1: 200 / 632 (2000·√0.1 = 632.5) / 2000
    assert [dflt.level_share(c2000, lv) for lv in range(3)] == [200, 632, 2000]

    root_scale = [0.10, 0.30, 0.20, 0.05, 0.25, 0.15, 0.12, 0.35, 0.08, 0.18]
    g = make_tree({"means": [[i * 0.3, 0, 0] for i in range(10)], "quats": [[1.0, 0, 0, 0]] * 10,
                   "scales": [[math.log(s)] * 3 for s in root_scale], "opacities": [1.0] * 10,
                   "sh0": [[[0.1, 0.2, 0.3]]] * 10}, [0] * 10, [-1] * 10)
    opt = adam_with_row_ids(g)
    grad = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.05, 0.6, 0.4])
    assert m.add_level(g, opt, c, 26, grad) == 24
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    top6 = sorted(torch.argsort(grad, descending=True)[:6].tolist())  # 2, 6, 4, 8, 0, 9
    assert parent[10:].tolist() == [p for p in top6 for _ in range(4)]
    assert len(hier.level_cut(level, parent, 1)) == 28

    assert m.add_level(g, opt, c, 43) == 40 and len(g) == 74
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    by_size = sorted(top6, key=lambda r: -root_scale[r])  # 4 (0.25), 2 (0.20), 9 (0.18), ...
    level1 = {p: [10 + 4 * i + j for j in range(4)] for i, p in enumerate(top6)}
    expect = sorted((level1[by_size[0]] + level1[by_size[1]] + level1[by_size[2]])[:10])
    assert parent[34:].tolist() == [p for p in expect for _ in range(4)]
    assert len(hier.level_cut(level, parent, 2)) == 58

    # clones: every finest node above the gradient threshold, room for 2 (the two highest)
    m.stats.reset(len(g))
    m.stats.grad_sum[34:] = torch.linspace(1.0, 2.0, 40)
    m.stats.count[34:] = 1.0
    assert m.growth_cap(g, c, 50) == 76
    out, _ = m.densify(g, opt, c, m.growth_cap(g, c, 50))
    assert out["cloned"] + out["split"] == 2 and out["pruned"] == 0 and len(g) == 76
    level, parent = hier.tree_of(g)
    hier.check_tree(level, parent)
    ops.check_aligned(g, opt)
    assert parent[74:].tolist() == parent[72:74].tolist()  # siblings of the last two (highest) rows
    assert len(hier.level_cut(level, parent, 2)) == 60


@pytest.mark.parametrize("split", ["even", "mip"])
def test_training_never_exceeds_the_gaussian_budget_and_keeps_the_tree(tmp_path, split):
    """A tiny run with eager densification: after every step the tree stays a valid forest with
    optimizer state aligned and within its budget, and still grows all its levels; without the
    budget the same run outgrows it. `even`: at most `cap_max` rows (and its levels' shares);
    `mip`: the finest cut at most `cap_max`, all rows at most the levels' shares summed
    (600 + 189 + 60, root_share 0.1)."""
    from splatlab.train.cli import build_parser, config_from_args
    from splatlab.train.trainer import Trainer, prepare_scene
    from test_train_scene import make_scene

    scene = make_scene(tmp_path / "scene", size=24, n_train=6, n_test=2)

    def run(cap: int) -> list[int]:
        argv = [str(scene), "--out", str(tmp_path / f"run{cap}"), "--iterations", "40", "--method", "hierarchical",
                "--init-points", "150", "--grad-threshold", "1e-6", "--refine-start", "4", "--refine-every", "4",
                "--refine-stop", "36", "--reset-every", "1000", "--sh-degree", "0", "--eval-every", "0",
                "--save-every", "0", "--seed", "3", "--no-progress", "--background-points", "0",
                "--cap-max", str(cap), "--method-option", f"budget_split={split}",
                "--background-shell", "0"]  # the budget of the tree alone (with a shell: the test below)
        cfg, _ = config_from_args(build_parser().parse_args(argv))
        t = Trainer(cfg, prepare_scene(cfg), None)
        counts = []
        for step in range(cfg.iterations):
            t.train_step(step)
            level, parent = hier.tree_of(t.gaussians)
            hier.check_tree(level, parent)
            ops.check_aligned(t.gaussians, t.optimizers)
            finest = len(hier.level_cut(level, parent, int(level.max())))
            if cap and split == "even":
                assert len(t.gaussians) <= t.method.row_budget(t.cfg, step + 1) <= cap, step
            if cap and split == "mip":
                assert finest <= t.method.level_share(t.cfg, int(level.max())) and finest <= cap, step
                assert len(t.gaussians) <= t.method.row_budget(t.cfg, step + 1) <= 600 + 189 + 60, step
            counts.append(finest if split == "mip" else len(t.gaussians))
        assert int(level.max()) == 2
        return counts

    counts = run(600)
    assert max(counts) > 400  # the last share was used
    assert max(run(0)) > 600


def test_background_shell_is_pinned_childless_and_in_every_level_and_lod_cut(tmp_path):
    """A tiny run with a 64-Gaussian background shell (train/shell.py) and eager densification:
    after every step the shell's rows are still the first 64, level-0 roots that no row has as
    parent, with position, rotation, scale and opacity exactly as initialised (only the colour
    trains); the tree still grows all its levels within the budget (the finest cut with the shell
    at most cap_max); every level's cut and every view's LOD cut (test views and views 4x as far,
    several thresholds) draws all 64."""
    from splatlab.train.cli import build_parser, config_from_args
    from splatlab.train.trainer import Trainer, prepare_scene
    from test_train_scene import make_scene

    scene = make_scene(tmp_path / "scene", size=24, n_train=6, n_test=2)
    n_shell, cap = 64, 600
    argv = [str(scene), "--out", str(tmp_path / "run"), "--iterations", "40", "--method", "hierarchical",
            "--init-points", "150", "--grad-threshold", "1e-6", "--refine-start", "4", "--refine-every", "4",
            "--refine-stop", "36", "--reset-every", "1000", "--sh-degree", "0", "--eval-every", "0",
            "--save-every", "0", "--seed", "3", "--no-progress", "--background-points", "0",
            "--cap-max", str(cap), "--background-shell", str(n_shell)]
    cfg, _ = config_from_args(build_parser().parse_args(argv))
    t = Trainer(cfg, prepare_scene(cfg), None)
    assert int(t.strategy_state["pinned"]) == n_shell and t.method.config.pinned == n_shell
    assert t.gaussians.method.options["pinned"] == n_shell  # recorded for readers of the .ply
    p = t.gaussians.params
    held = {k: p[k].detach()[:n_shell].clone() for k in ("means", "quats", "scales", "opacities")}
    sh0_start = p["sh0"].detach()[:n_shell].clone()
    for step in range(cfg.iterations):
        t.train_step(step)
        p = t.gaussians.params
        level, parent = hier.tree_of(t.gaussians)
        hier.check_tree(level, parent)
        ops.check_aligned(t.gaussians, t.optimizers)
        for k, v in held.items():
            assert torch.equal(p[k].detach()[:n_shell], v), (step, k)
        assert (level[:n_shell] == 0).all() and (parent[:n_shell] == -1).all(), step
        assert not bool((parent >= 0).logical_and(parent < n_shell).any()), step  # no shell row has children
        finest = len(hier.level_cut(level, parent, int(level.max())))
        assert finest <= cap, step
    assert int(level.max()) == 2 and len(t.gaussians) > 3 * n_shell  # the tree grew around the shell
    assert not torch.equal(p["sh0"].detach()[:n_shell], sh0_start)  # the colour trained

    g = t.gaussians
    shell = torch.arange(n_shell)
    for lv in range(3):
        assert set(shell.tolist()) <= set(hier.level_cut(level, parent, lv).tolist()), lv
    test_cams = t.scene.test.cameras
    center = hier.resolve(g)["means"][n_shell:][level[n_shell:] == 0].detach().median(dim=0).values
    c2w = test_cams.camtoworlds.clone()
    c2w[:, :3, 3] = center + 4.0 * (c2w[:, :3, 3] - center)
    far = Cameras(torch.linalg.inv(c2w), test_cams.Ks, test_cams.width, test_cams.height)
    with torch.no_grad():
        a = hier.resolve(g)
    forest = hier.Forest.build(level, parent, a)
    for cams in (test_cams, far):
        size = hier.projected_size(a["means"], a["log_scales"], cams)
        for px in (0.5, 2.0, 8.0, 32.0):
            masks = hier.lod_masks(level, parent, size, px)
            assert masks[:, :n_shell].all(), px
            rows, vis = hier.lod_select(forest, cams, px)
            assert torch.equal(rows[:n_shell], shell) and vis[:, :n_shell].all(), px
