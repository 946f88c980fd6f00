"""Adaptive density control of the original 3DGS paper (clone / split / prune / opacity reset).

Statistics: for every Gaussian, the norm of the 2D-mean gradient (or of the absolute gradient
with `absgrad`) is summed over the views in which it was visible, in normalised device units
(the pixel gradient times [W/2, H/2], times the number of cameras in the batch so a batched loss
mean does not shrink it), together with how many views saw it. Every `refine_every` steps in
(`refine_start`, `refine_stop`):

* grow: Gaussians whose mean gradient exceeds `grad_threshold` are cloned when small
  (max scale <= `grow_scale3d`·extent) and split in two (scale / 1.6) when large; with `cap_max`,
  only the largest gradients grow, up to that many Gaussians;
* prune: opacity < `prune_opacity`, and after the first opacity reset also max scale >
  `prune_scale3d`·max(extent, distance from the scene centre) (and screen size > `prune_scale2d`·image size when `scale2d_stop` > 0);
* every `reset_every` steps opacities are clamped to 2·`prune_opacity`.

Pinned rows (`state["pinned"]`, the trainer's background shell) are never grown, pruned or reset.

Floater controls (all off by default, see `floaters.py`): `min_view_fraction` > 0 also prunes, at every
refinement, Gaussians inside the camera rig (nearer the cameras' centroid than `scene_scale`) whose
centre is contained by fewer than that fraction of the training views (the trainer hands them over with `set_views`); `opacity_reg` / `scale_reg` add MCMC's regularisers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import ops
from .floaters import regulariser_terms, views_containing
from .base import BaseStrategy, step_generator


@dataclass
class DefaultStrategy(BaseStrategy):
    grad_threshold: float = 2e-4
    absgrad: bool = False
    grow_scale3d: float = 0.01
    prune_opacity: float = 0.005
    prune_scale3d: float = 0.1
    prune_scale2d: float = 0.15
    scale2d_stop: int = 0  # screen-size pruning before this step (0 = off, as the recipe)
    refine_start: int = 500
    refine_stop: int = 15_000
    refine_every: int = 100
    reset_every: int = 3000
    cap_max: int = 0  # growth stops at this many Gaussians (0: no cap); the largest gradients win
    min_view_fraction: float = 0.0  # prune Gaussians fewer than this fraction of the training views contain (needs set_views)
    opacity_reg: float = 0.0
    scale_reg: float = 0.0
    verbose: bool = False

    def __post_init__(self) -> None:
        self.views: tuple | None = None

    def set_views(self, viewmats, Ks, width: int, height: int) -> None:
        """The training cameras `min_view_fraction` counts (not part of the state: the trainer sets them)."""
        self.views = (viewmats.detach(), Ks.detach(), int(width), int(height))

    def loss_terms(self, gaussians, state, step) -> dict:
        return regulariser_terms(gaussians, self.opacity_reg, self.scale_reg)

    reduced_stats = ("grad2d", "count", "radii2d")

    @property
    def wants_absgrad(self) -> bool:  # type: ignore[override]
        return self.absgrad

    def initialize_state(self, scene_scale: float = 1.0, seed: int = 0, scene_center=None) -> dict:
        state = super().initialize_state(scene_scale, seed, scene_center)
        state.update(grad2d=None, count=None, radii2d=None)
        return state

    # -- statistics ---------------------------------------------------------------------------
    def accumulate(self, gaussians, state, step, meta) -> None:
        if step >= self.refine_stop:
            return
        grads = meta.absgrad if self.absgrad else meta.grad2d
        if grads is None:
            raise RuntimeError("DefaultStrategy needs the 2D-mean gradient: call step_post_backward after "
                               "backward()" + (" and render with absgrad=True" if self.absgrad else ""))
        n = len(gaussians)
        if state.get("grad2d") is None or state["grad2d"].shape[0] != n:
            reset_stats(state, n, grads.device)
        C = meta.n_cameras
        scale = grads.new_tensor([meta.width / 2.0 * C, meta.height / 2.0 * C])
        visible = meta.visible  # (C, N)
        cam_ids, gs_ids = torch.nonzero(visible, as_tuple=True)
        norms = (grads.detach()[cam_ids, gs_ids] * scale).norm(dim=-1)
        state["grad2d"].index_add_(0, gs_ids, norms)
        state["count"].index_add_(0, gs_ids, torch.ones_like(norms))
        if self.scale2d_stop > 0:
            r = meta.radii[cam_ids, gs_ids].max(dim=-1).values.float() / float(max(meta.width, meta.height))
            state["radii2d"].index_reduce_(0, gs_ids, r, "amax")

    # -- refinement ---------------------------------------------------------------------------
    def _grow_due(self, step: int) -> bool:
        return self.refine_start < step < self.refine_stop and step % self.refine_every == 0

    def _reset_due(self, step: int) -> bool:
        return 0 < step < self.refine_stop and step % self.reset_every == 0

    def refine_due(self, step: int) -> bool:
        return self._grow_due(step) or self._reset_due(step)

    def refine(self, gaussians, optimizers, state, step) -> dict:
        report = {}
        if self._grow_due(step):
            if state.get("grad2d") is None or state["grad2d"].shape[0] != len(gaussians):
                reset_stats(state, len(gaussians), gaussians.device)
            report.update(self.grow(gaussians, optimizers, state, step))
            report.update(self.prune(gaussians, optimizers, state, step))
            reset_stats(state, len(gaussians), gaussians.device)
        if self._reset_due(step):
            ops.reset_opacity(gaussians, optimizers, self.prune_opacity * 2.0, skip_first=int(state.get("pinned", 0)))
            report["reset"] = True
        if self.verbose and report:
            print(f"step {step}: {report}, now {len(gaussians)} Gaussians")
        return report

    def grow(self, gaussians, optimizers, state, step) -> dict:
        extent = state["scene_scale"]
        avg = state["grad2d"] / state["count"].clamp_min(1.0)
        free = ~ops.pinned_mask(state, len(gaussians), avg.device)
        high = (avg > self.grad_threshold) & free
        with torch.no_grad():
            max_scale = torch.exp(gaussians.params["scales"]).max(dim=-1).values
        small = max_scale <= self.grow_scale3d * extent
        clone = high & small
        split = high & ~small
        if self.scale2d_stop > 0 and step < self.scale2d_stop:
            split |= (state["radii2d"] > self.prune_scale2d) & free
        if self.cap_max > 0:  # each clone or split adds one Gaussian
            room = max(0, self.cap_max - len(gaussians))
            grow = clone | split
            if int(grow.sum()) > room:
                keep = torch.zeros_like(grow)
                if room:
                    keep[torch.topk(torch.where(grow, avg, -torch.inf), room).indices] = True
                clone, split = clone & keep, split & keep
        n_clone, n_split = int(clone.sum()), int(split.sum())
        if n_clone:
            ops.duplicate(gaussians, optimizers, clone)
            split = torch.cat([split, split.new_zeros(n_clone)])
        if n_split:
            ops.split(gaussians, optimizers, split, generator=step_generator(state, step, salt=1))
        return {"cloned": n_clone, "split": n_split}

    def prune(self, gaussians, optimizers, state, step) -> dict:
        with torch.no_grad():
            opac = torch.sigmoid(gaussians.params["opacities"])
            prune = opac < self.prune_opacity
            if step > self.reset_every:
                max_scale = torch.exp(gaussians.params["scales"]).max(dim=-1).values
                prune |= max_scale > self.prune_scale3d * size_reference(gaussians, state)
                if self.scale2d_stop > 0 and step < self.scale2d_stop and state.get("radii2d") is not None:
                    r = state["radii2d"]
                    if r.shape[0] == len(gaussians):
                        prune |= r > self.prune_scale2d
            if self.min_view_fraction > 0:
                if self.views is None:
                    raise RuntimeError("DefaultStrategy(min_view_fraction > 0) needs the training views: call set_views")
                # only inside the camera rig: sky and distant ground beyond it are seen by few
                # views because few views look that way, not because they are floaters
                inside = size_reference(gaussians, state) <= state["scene_scale"]
                few = views_containing(gaussians.params["means"], *self.views) < self.min_view_fraction * len(self.views[0])
                prune |= inside & few
            prune &= ~ops.pinned_mask(state, len(gaussians), prune.device)
        n = int(prune.sum())
        if n:
            ops.remove(gaussians, optimizers, prune)
        return {"pruned": n}


def size_reference(gaussians, state: dict) -> torch.Tensor | float:
    """What "too big" is relative to: the scene extent, or for a Gaussian farther from the scene
    centre than that, its distance (a sky Gaussian 100 m away may be metres wide and still cover
    only a few pixels; the recipe's fixed threshold would delete the whole background)."""
    extent = state["scene_scale"]
    if state.get("scene_center") is None:
        return extent
    center = torch.tensor(state["scene_center"], dtype=gaussians.params["means"].dtype,
                          device=gaussians.params["means"].device)
    with torch.no_grad():
        return (gaussians.params["means"] - center).norm(dim=-1).clamp_min(extent)


def reset_stats(state: dict, n: int, device=None) -> None:
    state["grad2d"] = torch.zeros(n, device=device)
    state["count"] = torch.zeros(n, device=device)
    state["radii2d"] = torch.zeros(n, device=device)
