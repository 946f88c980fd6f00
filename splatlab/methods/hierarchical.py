"""`hierarchical`: Gaussians in coarse-to-fine levels, finer ones parameterised by their parents
(after GSGAN, Hyun & Heo 2024), rendered at a level of detail chosen per view.

    splatlab train scenes/robot --method hierarchical [--method-option levels=3 children=4]
    splatlab render RUN/point_cloud.ply --lod 2        # per-view cut at a 2-pixel threshold
    splatlab export RUN RUN/level1.ply --level 1       # a flat 3DGS .ply of one level

The scene is one `Gaussians` table holding every level. Extras `hier_level` (0 = coarsest) and
`hier_parent` (row index of the parent, -1 for roots) make it a forest. A root's core fields
are ordinary 3DGS parameters. A child's core fields are *residuals* on its parent's absolute
attributes (`resolve`):

    position  = parent position + R(q_parent) · diag(s_parent) · a · tanh(g · means)
    log-scale = parent log-scale − softplus(scales)        (so a child is always smaller)
    rotation  = q_parent ⊗ normalize(quats)
    opacity   = sigmoid(parent logit + opacities);  SH = parent SH + sh residual

with a = `offset_scale` (default 3: a child may sit anywhere in its parent's 3σ footprint, not
only within 1σ) and g = `offset_gain` (default 3: the offsets' Adam steps are in units of the
parent's σ, so without a gain children barely move); both 1 in files that do not store them.

A *cut* is a set of nodes that crosses every root-to-leaf path exactly once, so every cut is a
complete picture. `level=L` renders the nodes of level L plus leaves above it; `lod=P` renders,
per view, each subtree at the first node whose projected size (3σ of its largest axis, in
pixels) is at most P (a node is *expanded* into its children while it looks bigger than P).

Training renders the finest cut for the photometric loss and every coarser level for its own
loss term (against the full-resolution image by default; `coarse_target=lowpass` compares with
the image low-passed to the level's scale, which cost garden's coarse levels 1.0-1.6 dB of test
PSNR and its far cuts at 4-16 px ~0.1 dB against the truth), so each level stays a valid
picture. New levels are added at fixed steps (nodes of the finest level get `children`
children), and the method does its own tree-aware densification (it owns it: the trainer's strategy does not run): high-gradient
finest-level nodes are cloned as siblings (large ones split in two, as 3DGS does, `split`),
transparent leaves are pruned, and every edit remaps `hier_parent` and keeps the optimizer
state of every row aligned (`densify.ops`).

The trainer's Gaussian budget (`cap_max`) is spent like a mipmap pyramid (`budget_split=mip`,
the default): it bounds the finest cut (the full-detail picture), exactly as it bounds a flat
run, and the coarser cuts are extra storage on top, shrinking geometrically to
`root_share`·cap_max at level 0 (`level_share`; levels=3, root_share=0.1: 10% / 31.6% / 100%,
42% extra). The initial points are subsampled to half of level 0's share (and resized to their
new spacing, `rescale_roots`); the roots clone into the rest. A new level gives children to as
many finest-level nodes as its share holds (highest mean screen-space gradient first); the
others stay leaves, drawn by every finer cut. The older splits bound the whole tree, all levels
together (`row_budget`): `even` gives each level 1/L, `tree` children^l shares; until the first
new level the roots and their clones may use level 0's share, and each added level unlocks its
own. With `cap_max` 0 every node gets children and clones are unbounded.

The background shell (`train/shell.py`, on by default for opaque photos) is the first `pinned`
rows: extra level-0 roots that the trainer pins (only their colour trains) and this method never
subsamples, resizes, clones, splits, prunes or gives children, so as leaves at level 0 they are
in every level's cut and every LOD cut (a far sky belongs in every picture). They count inside
the budget, as in a flat run: the finest cut with the shell holds at most `cap_max`, and the
shares above split what is left (`tree_cap` = cap_max − pinned), so every coarser cut draws the
shell on top of its share.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import Tensor, nn

from splatlab.cameras import Cameras
from splatlab.densify import ops
from splatlab.gaussians import Gaussians
from splatlab.losses import photometric_loss
from splatlab.render.api import rasterize
from splatlab.render.projection import quat_multiply, quat_to_rotmat

from .base import LossInputs, Method, MethodConfig, RenderContext, RenderPass
from .registry import register_method

LEVEL, PARENT = "hier_level", "hier_parent"
SIGMA_EXTENT = 3.0  # projected size of a Gaussian: 3σ of its largest axis


@dataclass
class HierarchicalConfig(MethodConfig):
    """Hierarchical Gaussians options (see the module docstring)."""

    levels: int = 3
    children: int = 4
    roots: int = 0  # keep at most this many level-0 Gaussians after the first step (0: all)
    level: int = -1  # evaluation cut by level (-1: the finest)
    lod: float = 0.0  # evaluation cut by projected size in pixels (0: off, use `level`)
    coarse_weight: float = 1.0  # weight of each coarser level's loss
    coarse_target: str = "full"  # full | lowpass (each coarser level against a low-passed target)
    offset_init: float = 0.5  # children start at parent + R·S·tanh(U(-a, a))
    grow_levels_until: float = 0.6  # new levels are added before this fraction of refine_stop
    # how cap_max is spent: mip (cap_max bounds the finest cut, as for a flat run; coarser cuts are
    # extra, geometric from root_share) | even (the whole tree, 1/L per level) | tree (the whole
    # tree, children^l shares: a full tree's shape)
    budget_split: str = "mip"
    root_share: float = 0.1  # budget_split=mip: level 0's cut as a fraction of cap_max
    offset_scale: float = 3.0  # child position = parent + R·S·offset_scale·tanh(offset_gain·means)
    offset_gain: float = 3.0  # multiplies the child offsets' effective learning rate (Adam steps in `means`)
    rescale_roots: bool = True  # after subsampling the roots, size them by their new 3-NN distances
    split: bool = True  # densify: split large high-gradient finest leaves in two (3DGS's split) instead of cloning
    # rows 0..pinned-1 are the trainer's background shell (train/shell.py): pinned level-0 leaves,
    # drawn by every cut. Set by the trainer at `setup` (not a user option); recorded in the .ply
    pinned: int = 0

    def validate(self) -> None:
        if not 1 <= self.levels <= 8:
            raise ValueError(f"levels must be in 1..8, got {self.levels}")
        if self.roots < 0:
            raise ValueError(f"roots must be >= 0, got {self.roots}")
        if self.pinned < 0:
            raise ValueError(f"pinned must be >= 0, got {self.pinned}")
        if not 1 <= self.children <= 16:
            raise ValueError(f"children must be in 1..16, got {self.children}")
        if self.lod < 0:
            raise ValueError(f"lod must be >= 0 pixels, got {self.lod}")
        if self.coarse_weight < 0:
            raise ValueError(f"coarse_weight must be >= 0, got {self.coarse_weight}")
        if self.coarse_target not in ("lowpass", "full"):
            raise ValueError(f"coarse_target must be lowpass or full, got {self.coarse_target!r}")
        if self.budget_split not in ("even", "tree", "mip"):
            raise ValueError(f"budget_split must be even, tree or mip, got {self.budget_split!r}")
        if self.offset_scale <= 0 or self.offset_gain <= 0:
            raise ValueError("offset_scale and offset_gain must be > 0")
        if not 0 < self.root_share <= 1:
            raise ValueError(f"root_share must be in (0, 1], got {self.root_share}")
        if not 0 < self.grow_levels_until <= 1:
            raise ValueError(f"grow_levels_until must be in (0, 1], got {self.grow_levels_until}")


# ---------------------------------------------------------------------------------------------
# the tree


def tree_of(gaussians: Gaussians) -> tuple[Tensor, Tensor]:
    """(level, parent) as long tensors."""
    return gaussians.params[LEVEL].detach().round().long(), gaussians.params[PARENT].detach().round().long()


def check_tree(level: Tensor, parent: Tensor) -> None:
    """Raise ValueError unless roots are level 0 and every child's parent is one level up."""
    n = level.shape[0]
    roots = parent < 0
    if bool((level[roots] != 0).any()):
        raise ValueError("hierarchical: a root is not on level 0")
    kids = ~roots
    if bool((parent[kids] >= n).any()):
        raise ValueError("hierarchical: a parent index is out of range")
    if bool((level[parent[kids]] != level[kids] - 1).any()):
        raise ValueError("hierarchical: a child is not one level below its parent")


def has_children(parent: Tensor, n: int) -> Tensor:
    counts = torch.bincount(parent[parent >= 0], minlength=n)
    return counts > 0


def offset_params(gaussians: Gaussians) -> tuple[float, float]:
    """(offset_scale, offset_gain) of the scene's child parameterisation, from its method options
    (a trained run stores every option; a key missing, as in files written before these options
    existed or trees built in code without them, means 1: position = parent + R·S·tanh(means))."""
    m = gaussians.method
    opts = m.options if m is not None and m.name == "hierarchical" else {}
    return float(opts.get("offset_scale", 1.0)), float(opts.get("offset_gain", 1.0))


def resolve(gaussians: Gaussians) -> dict[str, Tensor]:
    """Absolute attributes of every row (differentiable in the core fields): means (N,3), log_scales
    (N,3), quats (N,4, unit), logits (N,), sh (N,K,3)."""
    p = gaussians.params
    level, parent = tree_of(gaussians)
    n = level.shape[0]
    o_scale, o_gain = offset_params(gaussians)
    sh_raw = torch.cat([p["sh0"], p["shN"]], dim=1)
    pos_in_level = torch.zeros(n, dtype=torch.long, device=level.device)
    parts: list[tuple[Tensor, dict[str, Tensor]]] = []
    prev: dict[str, Tensor] | None = None
    for lv in range(int(level.max()) + 1 if n else 0):
        rows = torch.nonzero(level == lv, as_tuple=True)[0]
        pos_in_level[rows] = torch.arange(len(rows), device=level.device)
        if lv == 0:
            cur = {"means": p["means"][rows], "log_scales": p["scales"][rows],
                   "quats": F.normalize(p["quats"][rows], dim=-1), "logits": p["opacities"][rows],
                   "sh": sh_raw[rows]}
        else:
            # index_select: its backward (index_add) sums a parent's children in a fixed order;
            # tensor[at]'s backward (index_put accumulate) may not, and resumes must be bit-exact
            at = pos_in_level[parent[rows]]
            up = {k: torch.index_select(v, 0, at) for k, v in prev.items()}
            pm, ps, pq = up["means"], up["log_scales"], up["quats"]
            tan = torch.tanh(p["means"][rows] * o_gain) if o_gain != 1.0 else torch.tanh(p["means"][rows])
            if o_scale != 1.0:
                tan = tan * o_scale
            offset = quat_to_rotmat(pq) @ (torch.exp(ps) * tan)[..., None]
            cur = {"means": pm + offset[..., 0],
                   "log_scales": ps - F.softplus(p["scales"][rows]),
                   "quats": F.normalize(quat_multiply(pq, F.normalize(p["quats"][rows], dim=-1)), dim=-1),
                   "logits": up["logits"] + p["opacities"][rows],
                   "sh": up["sh"] + sh_raw[rows]}
        parts.append((rows, cur))
        prev = cur
    if not parts:
        return {"means": p["means"], "log_scales": p["scales"], "quats": p["quats"], "logits": p["opacities"],
                "sh": sh_raw}
    order = torch.cat([r for r, _ in parts])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return {k: torch.cat([c[k] for _, c in parts])[inverse] for k in parts[0][1]}


def level_cut(level: Tensor, parent: Tensor, target: int) -> Tensor:
    """Rows of the level-`target` picture: nodes on that level plus leaves above it."""
    leaf = ~has_children(parent, level.shape[0])
    return torch.nonzero((level == target) | ((level < target) & leaf), as_tuple=True)[0]


def world_extent(log_scales: Tensor) -> Tensor:
    """(N,) 3σ of each Gaussian's largest axis, in world units."""
    return SIGMA_EXTENT * torch.exp(log_scales.max(dim=-1).values)


def size_from_extent(means: Tensor, extent: Tensor, cameras: Cameras) -> Tensor:
    """(C, N) on-screen size in pixels of world extents `extent` (N,) at `means` (N,3) (inf behind
    the camera). Element-wise arithmetic (no matmul), so a row's size does not depend on which
    other rows are in the batch: a cut chosen on a subset of rows equals one chosen on all."""
    vm = cameras.viewmats.to(means)
    r = vm[:, 2]  # (C, 4): depth row of each view matrix
    z = (means[:, 0:1] * r[:, 0] + means[:, 1:2] * r[:, 1]) + (means[:, 2:3] * r[:, 2] + r[:, 3])  # (N, C)
    focal = cameras.Ks.to(means)[:, 0, 0]
    size = focal[None] * extent[:, None] / z.clamp_min(1e-6)
    return torch.where(z > 1e-6, size, torch.full_like(size, math.inf)).T


def projected_size(means: Tensor, log_scales: Tensor, cameras: Cameras) -> Tensor:
    """(C, N) on-screen size in pixels of 3σ of each Gaussian's largest axis (inf behind the camera)."""
    return size_from_extent(means, world_extent(log_scales), cameras)


def lod_masks(level: Tensor, parent: Tensor, size: Tensor, threshold: float) -> Tensor:
    """(C, N) bool: row n is in view c's cut, where each node is expanded into its children while
    its size (C, N) is above `threshold`. Every view at once: one pass per level, no loop over
    views or subtrees. Always a valid cut (one node on every root-to-leaf path)."""
    n = level.shape[0]
    expanded = (size > threshold) & has_children(parent, n)[None]
    shown_path = torch.zeros_like(expanded)  # all ancestors expanded
    for lv in range(int(level.max()) + 1 if n else 0):
        rows = torch.nonzero(level == lv, as_tuple=True)[0]
        if lv == 0:
            shown_path[:, rows] = True
        else:
            par = parent[rows]
            shown_path[:, rows] = shown_path[:, par] & expanded[:, par]
    return shown_path & ~expanded


@dataclass
class Forest:
    """What a top-down LOD walk needs of one scene, computed once per scene (`HierarchicalGaussians.forest`):
    the roots, each node's children as a CSR list (ascending rows), and every row's absolute
    centre and world extent."""

    roots: Tensor  # (R,) level-0 rows, ascending
    child_start: Tensor  # (N,) first entry of a row's children in `child_rows`
    child_count: Tensor  # (N,)
    child_rows: Tensor  # (N - R,) children grouped by parent, ascending within a parent
    means: Tensor  # (N, 3) absolute centres
    extent: Tensor  # (N,) world_extent of the absolute log-scales

    @classmethod
    def build(cls, level: Tensor, parent: Tensor, absolute: dict[str, Tensor]) -> "Forest":
        n = level.shape[0]
        kids = torch.nonzero(parent >= 0, as_tuple=True)[0]
        order = torch.argsort(parent[kids], stable=True)
        count = torch.bincount(parent[kids], minlength=n)
        start = torch.cumsum(count, 0) - count
        return cls(roots=torch.nonzero(parent < 0, as_tuple=True)[0], child_start=start, child_count=count,
                   child_rows=kids[order], means=absolute["means"].detach(),
                   extent=world_extent(absolute["log_scales"].detach()))

    def children(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """(children of `nodes`, position in `nodes` of each child's parent), grouped by node."""
        count = self.child_count[nodes]
        owner = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), count)
        first = torch.cumsum(count, 0) - count
        within = torch.arange(len(owner), device=nodes.device) - first[owner]
        return self.child_rows[self.child_start[nodes][owner] + within], owner


@njit(cache=True, nogil=True)
def _lod_walk(roots, child_start, child_count, child_rows, means, extent, r, focal, threshold, tiny):
    """Compiled top-down walk, one view at a time (float32 arithmetic in `size_from_extent`'s
    order, so every comparison equals the tensor version's). Returns the ascending union of the
    views' cuts and its (C, U) membership."""
    n = child_start.shape[0]
    C = r.shape[0]
    stack = np.empty(n, np.int64)
    hits = np.empty(0, np.int64)
    seen = np.zeros(n, np.bool_)
    offsets = np.zeros(C + 1, np.int64)
    found = np.empty(max(n, 1), np.int64)
    total = 0
    for c in range(C):
        r0, r1, r2, r3, f = r[c, 0], r[c, 1], r[c, 2], r[c, 3], focal[c]
        sp = 0
        for i in range(roots.shape[0] - 1, -1, -1):
            stack[sp] = roots[i]
            sp += 1
        while sp > 0:
            sp -= 1
            g = stack[sp]
            big = True
            if child_count[g] > 0:
                z = (means[g, 0] * r0 + means[g, 1] * r1) + (means[g, 2] * r2 + r3)
                if z > tiny:
                    big = f * extent[g] / z > threshold
            else:
                big = False
            if big:
                s0 = child_start[g]
                for k in range(child_count[g] - 1, -1, -1):
                    stack[sp] = child_rows[s0 + k]
                    sp += 1
            else:
                if total == found.shape[0]:
                    grown = np.empty(2 * found.shape[0], np.int64)
                    grown[:total] = found[:total]
                    found = grown
                found[total] = g
                total += 1
                seen[g] = True
        offsets[c + 1] = total
    pos = np.empty(n, np.int64)
    u = 0
    for g in range(n):
        if seen[g]:
            pos[g] = u
            u += 1
    rows = np.empty(u, np.int64)
    for g in range(n):
        if seen[g]:
            rows[pos[g]] = g
    vis = np.zeros((C, u), np.bool_)
    for c in range(C):
        for k in range(offsets[c], offsets[c + 1]):
            vis[c, pos[found[k]]] = True
    return rows, vis


def lod_select(forest: Forest, cameras: Cameras, threshold: float) -> tuple[Tensor, Tensor]:
    """(rows, visibility): the union of every view's LOD cut (ascending rows) and the (C, len(rows))
    membership of each view, equal to `lod_masks` restricted to its non-empty columns. Walks the
    forest top-down from the roots, sizing only nodes some view reaches, so the cost follows the
    cuts drawn, not the whole tree (compiled on the CPU; `lod_select_tensors` elsewhere)."""
    if forest.means.device.type != "cpu" or forest.means.dtype != torch.float32:
        return lod_select_tensors(forest, cameras, threshold)
    means = forest.means
    r = cameras.viewmats.to(means)[:, 2].contiguous()
    focal = cameras.Ks.to(means)[:, 0, 0].contiguous()
    rows, vis = _lod_walk(forest.roots.numpy(), forest.child_start.numpy(), forest.child_count.numpy(),
                          forest.child_rows.numpy(), means.numpy(), forest.extent.numpy(), r.numpy(), focal.numpy(),
                          np.float32(threshold), np.float32(1e-6))
    return torch.from_numpy(rows), torch.from_numpy(vis)


def lod_select_tensors(forest: Forest, cameras: Cameras, threshold: float) -> tuple[Tensor, Tensor]:
    """`lod_select` in tensor operations, a level at a time on (nodes, views) tables (a node's views
    contiguous); `size > threshold` as `size_from_extent` computes it: behind the camera (z <= 1e-6,
    or NaN) the size is inf, otherwise the same quotient in the same order."""
    means = forest.means
    r = cameras.viewmats.to(means)[:, 2]  # (C, 4): depth row of each view matrix
    focal = cameras.Ks.to(means)[:, 0, 0]
    frontier = forest.roots
    shown = torch.ones((len(frontier), len(cameras)), dtype=torch.bool, device=frontier.device)
    rows, masks = [frontier[:0]], [shown[:0]]
    while len(frontier):
        m = means[frontier]
        z = (m[:, 0:1] * r[:, 0] + m[:, 1:2] * r[:, 1]) + (m[:, 2:3] * r[:, 2] + r[:, 3])  # (F, C)
        big = ~(z > 1e-6) | (focal[None] * forest.extent[frontier][:, None] / z.clamp_min(1e-6) > threshold)
        expanded = shown & big & (forest.child_count[frontier] > 0)[:, None]
        cut = shown & ~expanded
        drawn = cut.any(dim=1)
        rows.append(frontier[drawn])
        masks.append(cut[drawn])
        open_ = torch.nonzero(expanded.any(dim=1), as_tuple=True)[0]
        frontier, owner = forest.children(frontier[open_])
        shown = expanded[open_[owner]]
    all_rows = torch.cat(rows)
    order = torch.argsort(all_rows)
    return all_rows[order], torch.cat(masks)[order].T.contiguous()


def lod_cut(level: Tensor, parent: Tensor, size: Tensor, threshold: float) -> Tensor:
    """Rows of one view's cut (`size` (N,)); see `lod_masks`."""
    return torch.nonzero(lod_masks(level, parent, size[None], threshold)[0], as_tuple=True)[0]


def cut_for_cameras(gaussians: Gaussians, cameras: Cameras, threshold: float) -> Tensor:
    """One cut fine enough for every camera (a node is expanded if any camera sees it too big)."""
    level, parent = tree_of(gaussians)
    with torch.no_grad():
        a = resolve(gaussians)
        size = projected_size(a["means"], a["log_scales"], cameras).max(dim=0).values
    return lod_cut(level, parent, size, threshold)


def bake(gaussians: Gaussians, rows: Tensor) -> Gaussians:
    """A plain 3DGS scene of the given rows' absolute attributes."""
    with torch.no_grad():
        a = resolve(gaussians)
    sh = a["sh"][rows]
    return Gaussians(a["means"][rows], a["quats"][rows], a["log_scales"][rows], a["logits"][rows],
                     sh[:, :1], sh[:, 1:])


# ---------------------------------------------------------------------------------------------
# tree-aware row edits (parents remapped, optimizer state aligned through `densify.ops`)


def descendants_mask(level: Tensor, parent: Tensor, mask: Tensor) -> Tensor:
    """`mask` grown to every descendant of a selected node."""
    out = mask.clone()
    for lv in range(1, int(level.max()) + 1 if len(level) else 0):
        rows = torch.nonzero(level == lv, as_tuple=True)[0]
        out[rows] |= out[parent[rows]]
    return out


def remove_subtrees(gaussians: Gaussians, optimizers, mask: Tensor) -> int:
    """Delete the selected nodes and their descendants; parent indices are renumbered."""
    level, parent = tree_of(gaussians)
    drop = descendants_mask(level, parent, mask.to(torch.bool))
    if not bool(drop.any()):
        return 0
    keep = ~drop
    new_index = torch.cumsum(keep.long(), 0) - 1
    new_parent = torch.where(parent >= 0, new_index[parent.clamp_min(0)], parent)
    ops.remove(gaussians, optimizers, drop)
    ops.update_rows(gaussians, optimizers, lambda name, p: new_parent[keep].to(p),
                    lambda name, key, v: v, names=[PARENT])
    return int(drop.sum())


def clone_as_siblings(gaussians: Gaussians, optimizers, mask: Tensor) -> int:
    """Append a copy of each selected node under the same parent (children are not copied; the
    copy is a leaf). Both halves keep the node's residuals, as 3DGS's clone does."""
    idx = torch.nonzero(mask, as_tuple=True)[0]
    if len(idx) == 0:
        return 0
    ops.duplicate(gaussians, optimizers, idx)
    return len(idx)


def residuals_for(gaussians: Gaussians, rows: Tensor, means: Tensor, log_scales: Tensor) -> tuple[Tensor, Tensor]:
    """The `means` / `scales` residuals that put rows `rows` at absolute `means` (R,3) and
    `log_scales` (R,3) under their current parents (roots: the values themselves). Positions
    outside the parent's reach are clamped to it; scales must be below the parent's."""
    level, parent = tree_of(gaussians)
    o_scale, o_gain = offset_params(gaussians)
    with torch.no_grad():
        a = resolve(gaussians)
        par = parent[rows]
        kid = par >= 0
        m_res, s_res = means.clone(), log_scales.clone()
        if bool(kid.any()):
            pp = par[kid]
            R = quat_to_rotmat(a["quats"][pp])
            local = (R.transpose(-1, -2) @ (means[kid] - a["means"][pp])[..., None])[..., 0]
            local = local / (torch.exp(a["log_scales"][pp]) * o_scale)
            m_res[kid] = torch.atanh(local.clamp(-0.999, 0.999)) / o_gain
            d = (a["log_scales"][pp] - log_scales[kid]).clamp_min(1e-4)
            s_res[kid] = torch.log(torch.expm1(d))
    return m_res, s_res


def split_in_place(gaussians: Gaussians, optimizers, mask: Tensor, generator: torch.Generator,
                   divisor: float = 1.6) -> int:
    """3DGS's split for leaves: each selected leaf becomes two siblings sampled from it (absolute
    centre + R·S·ε, scale / 1.6), the first in its own row, the second appended; both start with
    zero optimizer state. Other residuals (colour, opacity, rotation) are kept."""
    idx = torch.nonzero(mask, as_tuple=True)[0]
    if len(idx) == 0:
        return 0
    level, parent = tree_of(gaussians)
    if bool(has_children(parent, len(gaussians))[idx].any()):
        raise ValueError("hierarchical: only leaves can be split")
    ops.duplicate(gaussians, optimizers, idx)
    rows = torch.cat([idx, len(gaussians) - len(idx) + torch.arange(len(idx), device=idx.device)])
    with torch.no_grad():
        a = resolve(gaussians)
        m, ls = a["means"][rows], a["log_scales"][rows]
        eps = torch.randn(m.shape, generator=generator).to(m)
        m_new = m + (quat_to_rotmat(a["quats"][rows]) @ (torch.exp(ls) * eps)[..., None])[..., 0]
        m_res, s_res = residuals_for(gaussians, rows, m_new, ls - math.log(divisor))
    ops.set_rows(gaussians, optimizers, rows, {"means": m_res, "scales": s_res})
    return len(idx)


def add_children(gaussians: Gaussians, optimizers, parents: Tensor, k: int, offset_init: float,
                 generator: torch.Generator) -> int:
    """Append k children to each row in `parents`: residuals zero (the parent's colour, rotation
    and opacity), scale half the parent's (softplus(0) = log 2), offsets uniform in ±offset_init."""
    parents = parents.long()
    m = len(parents) * k
    if m == 0:
        return 0
    p = gaussians.params
    src = parents.repeat_interleave(k)
    dev = p["means"].device
    offsets = (torch.rand((m, 3), generator=generator) * 2 - 1).to(dev) * offset_init
    gain = offset_params(gaussians)[1]
    if gain != 1.0:
        offsets = offsets / gain  # stored so that tanh(gain · means) starts where gain 1 would
    quats = torch.zeros((m, 4), device=dev)
    quats[:, 0] = 1.0
    fields: dict[str, Tensor] = {
        "means": offsets, "quats": quats, "scales": torch.zeros((m, 3), device=dev),
        "opacities": torch.zeros(m, device=dev), "sh0": torch.zeros((m, *p["sh0"].shape[1:]), device=dev),
        "shN": torch.zeros((m, *p["shN"].shape[1:]), device=dev),
        LEVEL: p[LEVEL].detach()[src] + 1, PARENT: src.to(p[PARENT].dtype),
    }
    for name in gaussians.extra_names():
        if name not in fields:
            fields[name] = p[name].detach()[src]
    ops.append(gaussians, optimizers, fields)
    return m


# ---------------------------------------------------------------------------------------------
# densification statistics (checkpointed; rows change size, so loading resizes the buffers)


class HierarchyStats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("grad_sum", torch.zeros(0))
        self.register_buffer("count", torch.zeros(0))

    def reset(self, n: int, device=None) -> None:
        self.grad_sum = torch.zeros(n, device=device)
        self.count = torch.zeros(n, device=device)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        for name in ("grad_sum", "count"):
            if prefix + name in state_dict:
                setattr(self, name, state_dict[prefix + name].clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


def lowpass(images: Tensor, factor: int) -> Tensor:
    """(C,H,W,3) box-filtered to 1/factor and scaled back up (bilinear)."""
    if factor <= 1:
        return images
    x = images.permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    small = F.avg_pool2d(x, factor, ceil_mode=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------


@register_method("hierarchical", aliases=("hier", "gsgan"))
class HierarchicalGaussians(Method):
    """Hierarchical Gaussians: levels parameterised by their parents, level-of-detail cuts per view."""

    Config = HierarchicalConfig
    owns_densification = True
    # the background shell: extra level-0 roots, pinned (the trainer keeps all but their colour),
    # never given children, cloned, split or pruned here, so every level and every cut draws them
    supports_pinned_rows = True

    def __init__(self, config: HierarchicalConfig | None = None) -> None:
        super().__init__(config)
        self.stats = HierarchyStats()
        self._meta = None
        self._background: Tensor | None = None

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, scene, train_cfg) -> None:
        self._background = scene.background
        self._scene_scale = float(scene.scene_scale)
        from splatlab.train.init import shell_size
        self.config.pinned = int(shell_size(scene, train_cfg.resolved(), self))  # the trainer's first, pinned rows

    def pinned_mask(self, n: int, device=None) -> Tensor:
        """(n,) bool: the background shell's rows (the first `pinned`), which this method never edits."""
        return ops.pinned_mask({"pinned": self.config.pinned}, n, device)

    def extra_fields(self, n: int, train_cfg) -> dict[str, Tensor]:
        return {LEVEL: torch.zeros(n), PARENT: torch.full((n,), -1.0)}

    def extra_lrs(self, train_cfg) -> dict[str, float]:
        return {LEVEL: 0.0, PARENT: 0.0}

    def modules(self) -> dict[str, nn.Module]:
        return {"hierarchy": self.stats}

    def level_steps(self, train_cfg) -> list[int]:
        """Steps at which levels 1..L-1 are added."""
        c = train_cfg.resolved()
        start, stop = c.refine_start, max(c.refine_start + 1, int(c.refine_stop * self.config.grow_levels_until))
        L = self.config.levels
        return [start + (l * (stop - start)) // L for l in range(1, L)]

    # -- rendering ------------------------------------------------------------------------------
    def eval_rows(self, gaussians: Gaussians, cameras: Cameras, absolute: dict[str, Tensor]) -> list[tuple[Tensor | None, Tensor]]:
        """(camera index or None for all, rows) of the evaluation cut(s): one per view with `lod`."""
        level, parent = tree_of(gaussians)
        if self.config.lod > 0:
            masks = self.lod_masks(gaussians, cameras, absolute)
            return [(torch.tensor([i]), torch.nonzero(masks[i], as_tuple=True)[0]) for i in range(len(cameras))]
        finest = int(level.max()) if len(level) else 0
        target = finest if self.config.level < 0 else min(self.config.level, finest)
        return [(None, level_cut(level, parent, target))]

    def lod_masks(self, gaussians: Gaussians, cameras: Cameras, absolute: dict[str, Tensor]) -> Tensor:
        """(C, N) membership of every row in each view's cut at the `lod` threshold."""
        level, parent = tree_of(gaussians)
        size = projected_size(absolute["means"].detach(), absolute["log_scales"].detach(), cameras)
        return lod_masks(level, parent, size, self.config.lod)

    @staticmethod
    def _args(absolute: dict[str, Tensor], rows: Tensor, deg: int) -> dict[str, Any]:
        return {"means": absolute["means"][rows], "quats": absolute["quats"][rows],
                "scales": torch.exp(absolute["log_scales"][rows]), "opacities": torch.sigmoid(absolute["logits"][rows]),
                "colors": absolute["sh"][rows, : (deg + 1) ** 2], "sh_degree": deg}

    def raster_args(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> dict[str, Any]:
        passes = self.render_passes(gaussians, cameras, ctx)
        if len(passes) != 1:
            raise ValueError("hierarchical: an LOD cut is per camera; use render_passes")
        return passes[0].args

    def absolute(self, gaussians: Gaussians) -> dict[str, Tensor]:
        """`resolve(gaussians)`, reused across gradient-free renders of unchanged parameters (a
        viewer or benchmark draws the same scene many times; resolving is O(N) over every level
        while a cut draws a fraction of the rows). The cache holds weak references to the
        parameter tensors and their in-place version counters, so any edit or new scene misses."""
        if torch.is_grad_enabled():
            return resolve(gaussians)
        params = list(gaussians.params.values())
        cached = getattr(self, "_resolved", None)
        if cached is not None:
            refs, versions, value = cached
            if len(refs) == len(params) and all(r() is t and t._version == v
                                                for r, v, t in zip(refs, versions, params)):
                return value
        value = resolve(gaussians)
        self._resolved = ([weakref.ref(t) for t in params], [t._version for t in params], value)
        return value

    def forest(self, gaussians: Gaussians, absolute: dict[str, Tensor]) -> Forest:
        """`Forest.build` of the scene, kept with the cached `absolute` attributes it was built
        from (rebuilt whenever they are, i.e. on any edit of the parameters)."""
        cached = getattr(self, "_forest", None)
        if cached is not None and cached[0]() is absolute["means"]:
            return cached[1]
        level, parent = tree_of(gaussians)
        forest = Forest.build(level, parent, absolute)
        if not torch.is_grad_enabled():
            self._forest = (weakref.ref(absolute["means"]), forest)
        return forest

    def render_passes(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> list[RenderPass]:
        absolute = resolve(gaussians) if ctx.training else self.absolute(gaussians)
        if ctx.training:
            level, parent = tree_of(gaussians)
            rows = level_cut(level, parent, int(level.max()))
            return [RenderPass(self._args(absolute, rows, ctx.sh_degree), index=rows)]
        if self.config.lod > 0 and ctx.backend != "cuda":
            # the whole batch in one rasterize call: the union of the views' cuts, each view
            # drawing only its own cut (a visibility mask), instead of one call per view
            rows, visibility = lod_select(self.forest(gaussians, absolute), cameras, self.config.lod)
            args = self._args(absolute, rows, ctx.sh_degree)
            args["visibility"] = visibility
            return [RenderPass(args, index=rows)]
        return [RenderPass(self._args(absolute, rows, ctx.sh_degree), cameras=cams, index=rows)
                for cams, rows in self.eval_rows(gaussians, cameras, absolute)]

    def plain_gaussians(self, gaussians: Gaussians) -> Gaussians:
        level, parent = tree_of(gaussians)
        finest = int(level.max()) if len(level) else 0
        target = finest if self.config.level < 0 else min(self.config.level, finest)
        return bake(gaussians, level_cut(level, parent, target))

    # -- training -------------------------------------------------------------------------------
    def loss_terms(self, x: LossInputs, train_cfg) -> dict[str, Tensor]:
        self._meta = x.meta
        terms = photometric_loss(x.render, x.target, train_cfg.ssim_lambda)
        level, parent = tree_of(x.gaussians)
        finest = int(level.max())
        if finest == 0 or self.config.coarse_weight == 0 or x.cameras is None:
            return terms
        absolute = resolve(x.gaussians)
        deg = self._sh_degree(x, train_cfg)
        bg = self._background
        for lv in range(finest):
            rows = level_cut(level, parent, lv)
            img, _, _ = rasterize(viewmats=x.cameras.viewmats, Ks=x.cameras.Ks, width=x.cameras.width,
                                  height=x.cameras.height, backgrounds=bg, backend=train_cfg.backend,
                                  **self._args(absolute, rows, deg))
            target = x.target if self.config.coarse_target == "full" else lowpass(x.target, 2 ** (finest - lv))
            for name, value in photometric_loss(img, target, train_cfg.ssim_lambda).items():
                terms[f"level{lv}_{name}"] = self.config.coarse_weight * value
        return terms

    @staticmethod
    def _sh_degree(x: LossInputs, train_cfg) -> int:
        return min(x.step // max(1, train_cfg.sh_degree_interval), x.gaussians.sh_degree)

    def after_step(self, gaussians: Gaussians, optimizers, step: int, train_cfg) -> None:
        c = train_cfg.resolved()
        n = len(gaussians)
        if self.stats.grad_sum.shape[0] != n:
            self.stats.reset(n, gaussians.device)
        meta, self._meta = self._meta, None
        done = step + 1
        if meta is not None and done <= c.refine_stop:
            grads = meta.grad2d
            if grads is not None:
                scale = grads.new_tensor([meta.width / 2.0 * meta.n_cameras, meta.height / 2.0 * meta.n_cameras])
                cam_ids, gs_ids = torch.nonzero(meta.visible, as_tuple=True)
                norms = (grads.detach()[cam_ids, gs_ids] * scale).norm(dim=-1)
                self.stats.grad_sum.index_add_(0, gs_ids, norms)
                self.stats.count.index_add_(0, gs_ids, torch.ones_like(norms))
        changed = False
        pin = self.config.pinned  # the shell: kept, never resized
        roots = self.initial_roots(c, n - pin)
        if done == 1 and 0 < roots < n - pin:  # GSGAN starts from few coarse points
            gen = torch.Generator().manual_seed(int(c.seed) * 1_000_003 + 1)
            keep = torch.randperm(n - pin, generator=gen)[:roots].to(gaussians.device) + pin
            drop = torch.ones(n, dtype=torch.bool, device=gaussians.device)
            drop[keep] = False
            drop[:pin] = False
            remove_subtrees(gaussians, optimizers, drop)
            if self.config.rescale_roots:
                from splatlab.train.init import knn_scales
                with torch.no_grad():
                    knn = torch.log(knn_scales(gaussians.params["means"][pin:]) * c.init_scale).to(gaussians.device)
                    knn = torch.cat([knn.new_full((pin,), -math.inf), knn])  # max(p, -inf) = p: the shell keeps its size
                ops.update_rows(gaussians, optimizers, lambda name, p: torch.maximum(p, knn[:, None].to(p)),
                                lambda name, key, v: v, names=["scales"])
            changed = True
        score = None  # mean screen-space gradient per row, kept aligned through densify's edits
        if c.refine_start < done < c.refine_stop and done % c.refine_every == 0:
            _, score = self.densify(gaussians, optimizers, c, self.growth_cap(gaussians, c, done - 1))
            changed = True
        if done in self.level_steps(c):
            if score is None and not changed:
                score = self.stats.grad_sum / self.stats.count.clamp_min(1)
            self.add_level(gaussians, optimizers, c, done, score)
            changed = True
        if changed:
            self.stats.reset(len(gaussians), gaussians.device)

    def initial_roots(self, c, n: int) -> int:
        """Roots kept after the first step (of `n`): `roots` (0: all); with `budget_split=mip` and
        a budget, at most half of level 0's share, so the roots can still clone where the
        gradient is high."""
        keep = self.config.roots or n
        if self.config.budget_split == "mip" and c.cap_max:
            keep = min(keep, max(1, self.level_share(c, 0) // 2))
        return keep

    def level_share(self, c, lv: int) -> int:
        """`budget_split=mip`: the most Gaussians level `lv`'s cut may draw (0: no cap): the finest
        level's is `cap_max`, as for a flat run, and coarser ones shrink geometrically to
        `root_share`·cap_max at level 0: cap_max·root_share^((L−1−lv)/(L−1)), like a mipmap
        pyramid's levels (levels=3 and the default root_share=0.1: 10% / 31.6% / 100%, the
        coarser levels 42% of extra storage)."""
        if not c.cap_max:
            return 0
        cap = self.tree_cap(c)
        L = self.config.levels
        if L == 1 or lv >= L - 1:
            return int(cap)
        return int(cap * self.config.root_share ** ((L - 1 - lv) / (L - 1)))

    def tree_cap(self, c) -> int:
        """The budget left for the tree: `cap_max` less the background shell (`pinned`), which every
        cut draws, so the finest cut with the shell holds at most `cap_max`, as a flat run with
        its shell does; the level shares and row budgets below split this remainder."""
        return max(1, int(c.cap_max) - self.config.pinned) if c.cap_max else 0

    def tree_cut_size(self, level: Tensor, parent: Tensor, lv: int) -> int:
        """Tree rows (not the shell) in the level-`lv` cut."""
        return len(level_cut(level, parent, lv)) - self.config.pinned

    def row_budget(self, c, done: int) -> int:
        """Rows the whole tree may hold after step `done` (0: no cap). `even`/`tree`: level l's
        share of `cap_max` is w_l / sum(w) with w_l = 1 (`even`) or children^l (`tree`, the shape
        of a full tree); level 0 and its clones may use its share, and each level added (at
        `level_steps`) unlocks its own for its children and their clones, so after the last level
        the tree holds at most `cap_max`. `mip`: the sum of the added levels' `level_share`s (each
        level's rows are at most its cut), so the finest cut holds at most `cap_max` and the whole
        tree at most cap_max plus the coarser shares."""
        if not c.cap_max:
            return 0
        added = sum(1 for s in self.level_steps(c) if s <= done)
        L, k = self.config.levels, self.config.children
        if self.config.budget_split == "mip":
            return self.config.pinned + sum(self.level_share(c, lv) for lv in range(added + 1))
        w = [1] * L if self.config.budget_split == "even" else [k ** lv for lv in range(L)]
        return self.config.pinned + (self.tree_cap(c) * sum(w[: added + 1])) // sum(w)

    def growth_cap(self, gaussians: Gaussians, c, done: int) -> int:
        """Rows densification may grow the tree to after step `done` (0: no cap): `row_budget`,
        or with `mip` as many clones (each one more Gaussian in the finest cut) as the finest
        level's cut has room for in its `level_share`."""
        if not c.cap_max or self.config.budget_split != "mip":
            return self.row_budget(c, done)
        level, parent = tree_of(gaussians)
        finest = int(level.max()) if len(level) else 0
        cut = self.tree_cut_size(level, parent, finest)
        return len(gaussians) + max(0, self.level_share(c, finest) - cut)

    def add_level(self, gaussians: Gaussians, optimizers, c, done: int, score: Tensor | None = None) -> int:
        """Give `children` children to the finest level's nodes, as many as `row_budget(done)`
        (`mip`: the new level's `level_share` for its cut) leaves room for: all of them when they fit, else the nodes with the largest mean
        screen-space gradient `score` (ties: the larger world extent) first. Nodes left without
        children stay leaves, which every cut below their level draws. Returns rows added."""
        level, parent = tree_of(gaussians)
        k = self.config.children
        gen = torch.Generator().manual_seed(int(c.seed) * 1_000_003 + done)
        top = int(level.max())
        finest = torch.nonzero((level == top) & ~self.pinned_mask(len(level), level.device), as_tuple=True)[0]
        cap = self.row_budget(c, done)
        if cap:
            if self.config.budget_split == "mip":
                # each node given k children adds k - 1 Gaussians to the new level's cut
                room = max(0, self.level_share(c, top + 1) - self.tree_cut_size(level, parent, top))
                fit = len(finest) if k == 1 else room // (k - 1)
            else:
                fit = max(0, cap - len(gaussians)) // k
            if fit < len(finest):
                with torch.no_grad():
                    extent = world_extent(resolve(gaussians)["log_scales"])[finest]
                order = torch.argsort(extent, descending=True, stable=True)
                if score is not None and score.shape[0] == len(gaussians):
                    order = order[torch.argsort(score[finest][order], descending=True, stable=True)]
                finest = torch.sort(finest[order[:fit]]).values
        return add_children(gaussians, optimizers, finest, k, self.config.offset_init, gen)

    def densify(self, gaussians: Gaussians, optimizers, c, cap: int) -> tuple[dict[str, int], Tensor]:
        """Clone (or, when large, split) high-gradient finest-level nodes as siblings within `cap`
        rows (0: no cap; `growth_cap`); prune transparent leaves (with subtrees). Also returns each
        surviving row's mean gradient (a clone's is its source's)."""
        level, parent = tree_of(gaussians)
        n = len(gaussians)
        avg = self.stats.grad_sum / self.stats.count.clamp_min(1)
        pinned = self.pinned_mask(n, level.device)
        grow = (avg > c.grad_threshold) & (level == int(level.max())) & ~pinned
        if cap:
            room = max(0, cap - n)
            if int(grow.sum()) > room:
                keep = torch.topk(torch.where(grow, avg, -torch.ones_like(avg)), room).indices
                grow = torch.zeros_like(grow)
                grow[keep] = True
        split = torch.zeros_like(grow)
        if self.config.split:
            with torch.no_grad():
                big = torch.exp(resolve(gaussians)["log_scales"]).max(dim=-1).values
            split = grow & (big > c.grow_scale3d * getattr(self, "_scene_scale", 1.0))
            grow = grow & ~split
        cloned = clone_as_siblings(gaussians, optimizers, grow)
        gen = torch.Generator().manual_seed(int(c.seed) * 1_000_003 + 7919 + n)
        n_split = split_in_place(gaussians, optimizers, torch.cat([split, split.new_zeros(cloned)]), gen)
        score = torch.cat([avg, avg[grow], avg[split]])
        level, parent = tree_of(gaussians)
        with torch.no_grad():
            opac = torch.sigmoid(resolve(gaussians)["logits"])
        leaf = ~has_children(parent, len(gaussians))
        prune = (opac < c.prune_opacity) & leaf & ~self.pinned_mask(len(leaf), leaf.device)
        if bool(prune.all()):
            prune[torch.argmax(opac)] = False
        score = score[~descendants_mask(level, parent, prune)]
        pruned = remove_subtrees(gaussians, optimizers, prune)
        return {"cloned": cloned, "split": n_split, "pruned": pruned, "before": n}, score
