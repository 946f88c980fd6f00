"""The one contract between the trainer and a densification strategy.

A training step calls, in order::

    state = strategy.initialize_state(scene_scale)          # once
    ... render -> meta (RenderMeta) ...
    strategy.step_pre_backward(gaussians, optimizers, state, step, meta)
    loss = loss + sum(strategy.loss_terms(gaussians, state, step).values())
    loss.backward(); optimizer.step()
    strategy.step_post_backward(gaussians, optimizers, state, step, meta)

`step_post_backward` is `accumulate` (gradient statistics from `meta`), then `refine` when
`refine_due(step)` (the only place the number of Gaussians changes), then `after_step` (per-step
updates such as MCMC noise). The distributed trainer calls the three pieces itself so that it can
all-reduce the statistics named by `reduced_stats` before rank 0 refines. Strategy randomness
comes from `step_generator(state, step)`, so a run is reproducible from a checkpoint and every
rank draws the same numbers.

`state` is a plain dict of tensors and numbers (saved in checkpoints as is).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from splatlab.gaussians import Gaussians
from splatlab.render.types import RenderMeta

from .ops import Optimizers


@runtime_checkable
class Strategy(Protocol):
    def initialize_state(self, scene_scale: float = 1.0, seed: int = 0,
                         scene_center: tuple[float, float, float] | None = None) -> dict[str, Any]: ...

    def step_pre_backward(self, gaussians: Gaussians, optimizers: Optimizers, state: dict, step: int,
                          meta: RenderMeta) -> None: ...

    def step_post_backward(self, gaussians: Gaussians, optimizers: Optimizers, state: dict, step: int,
                           meta: RenderMeta) -> None: ...

    def loss_terms(self, gaussians: Gaussians, state: dict, step: int) -> dict[str, Tensor]: ...


class BaseStrategy:
    """Shared plumbing; subclasses override `accumulate`, `refine_due`, `refine`, `after_step`."""

    #: keys of `state` whose tensors are summed across ranks before `refine`
    reduced_stats: tuple[str, ...] = ()
    #: whether rendering must request the absolute 2D-mean gradient
    wants_absgrad: bool = False

    def initialize_state(self, scene_scale: float = 1.0, seed: int = 0,
                         scene_center: tuple[float, float, float] | None = None) -> dict[str, Any]:
        """`scene_scale`: the extent size thresholds are relative to; `scene_center` (the cameras'
        centroid) lets them grow with distance for far-away (background) Gaussians."""
        state = {"scene_scale": float(scene_scale), "seed": int(seed)}
        if scene_center is not None:
            state["scene_center"] = [float(v) for v in scene_center]
        return state

    def step_pre_backward(self, gaussians, optimizers, state, step, meta) -> None:
        return None

    def step_post_backward(self, gaussians, optimizers, state, step, meta) -> None:
        self.accumulate(gaussians, state, step, meta)
        if self.refine_due(step):
            self.refine(gaussians, optimizers, state, step)
        self.after_step(gaussians, optimizers, state, step)

    def loss_terms(self, gaussians, state, step) -> dict[str, Tensor]:
        return {}

    # -- pieces -------------------------------------------------------------------------------
    def accumulate(self, gaussians, state, step, meta) -> None:
        return None

    def refine_due(self, step: int) -> bool:
        return False

    def refine(self, gaussians, optimizers, state, step) -> None:
        return None

    def after_step(self, gaussians, optimizers, state, step) -> None:
        return None


def step_generator(state: dict, step: int, salt: int = 0) -> torch.Generator:
    """A CPU generator seeded from (run seed, step, salt): same numbers on every rank and after resume."""
    g = torch.Generator()
    g.manual_seed((int(state.get("seed", 0)) * 1_000_003 + int(step) * 7919 + salt) % (2 ** 63))
    return g


def means_lr(optimizers: Optimizers, gaussians: Gaussians) -> float:
    """The current learning rate of the `means` field (0 if no optimizer holds it)."""
    from .ops import iter_optimizers
    target = gaussians.params["means"]
    for opt in iter_optimizers(optimizers):
        for group in opt.param_groups:
            if any(p is target for p in group["params"]):
                return float(group["lr"])
    return 0.0
