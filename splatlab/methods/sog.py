"""Self-Organizing-Gaussians training, as used by the `sog` training method.

    splatlab train scenes/robot --method sog [--method-option grid=256] [--method-option lambda=3e-5]

The run follows the normal 3DGS recipe until the *grid step* (default: when densification stops,
`refine_stop`, or half-way when densification would run to the end). At the grid step the model
is pruned to the k^2 highest-opacity Gaussians, laid out on a k x k grid and its rows (and every
per-row optimizer state, via `splatlab.densify.ops.update_rows`) are *physically permuted into
grid order*: row i is texel (i % k, i // k). From then on every step adds the grid-smoothness loss
(`smoothness_loss`) and every `sort_every` steps the grid is re-sorted and rows + optimizer state
are permuted again. The final `point_cloud.ply` is therefore in grid order; `splatlab compress
--order keep` writes the SOG without re-sorting.

Defaults (measured on robot, see splatlab/compress/README.md, "Smoothness loss"): the grid is the
Morton order of the positions (the order `splatlab compress` writes when it is smaller, and the one
in which positions compress best), re-sorted every 100 steps, and the loss smooths only the
quaternions as the SOG file stores them (unit, sign-canonical, in 8-bit code steps; `space=encoded`)
with lambda 3e-5. The paper's settings are
`layout=plas space=raw w_quats=10 w_opacities=1 lambda=1 sort_every=1000`.

The only state besides the Gaussians is the grid side k (a buffer of `SOGState`, saved in
checkpoints as a method module), so `--stop-at` / `--resume` continue exactly.

k defaults to the largest multiple of `grid_multiple` (4) whose square fits the count: SOG
textures are a multiple of 4 texels wide, so only then does texel i of the training grid land on
texel i of the SOG texture.

Options (`SOGConfig`; on the command line `--method-option key=value`; a `sog_` prefix and dashes
are accepted, e.g. `sog-grid=64`):

    grid            grid side k (default: from the count at the grid step, see above)
    grid_multiple   k is rounded down to a multiple of this when derived (default 4)
    start           grid step: prune + first sort (default refine_stop, or iterations // 2)
    sort_every      re-sort interval in steps (default 100; 0 = never re-sort)
    sort_stop       no re-sorts after this step (default: to the end)
    lambda          overall smoothness weight (default 3e-5)
    w_<field>       per-field weight, field in means, quats, scales, opacities, sh0, shN
                    (default w_quats=1 only), e.g. w_opacities=1 w_scales=0 w_sh0=0
    sort_keys       comma-separated PLAS keys (default means,sh0,scales)
    layout          grid order: morton (default; Morton order of the positions) or plas (PLAS on
                    sort_keys)
    space           what is smoothed: encoded (default; what the SOG file stores, in 8-bit code
                    steps, see `splatlab.compress.smoothness`) or raw (raw parameters)
    delta           Huber delta (in the units of `space`; default 1)
    iso             weight each quaternion's term by its splat's min/max scale (default false)
    plas_threshold  PLAS stop threshold (default 1e-4)
    verbose         print prune / sort reports (default false)

Caveat: with `start` < `refine_stop` densification keeps running after the grid step; a changed
count is pruned back to k^2 and fully re-sorted at the next step, but a strategy's per-row
statistics accumulated between a re-sort and the next refine are not permuted with the rows.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from splatlab.compress.smoothness import ENCODED_STEPS, SOGTraining, SortedGrid, smoothness_loss
from splatlab.densify import ops
from splatlab.gaussians import Gaussians
from splatlab.io._common import morton_order

from .base import LossInputs, Method, MethodConfig
from .registry import register_method

__all__ = ["SOGConfig", "SOGState", "SOGController", "SelfOrganizingGaussians", "reorder_rows", "prune_to_grid",
           "grid_side_for"]

SORT_KEY_FIELDS = ("means", "sh0", "scales", "opacities", "quats", "shN")


def _alias(default, *names):
    return field(default=default, metadata={"aliases": names})


@dataclass
class SOGConfig(MethodConfig):
    """Self-Organizing Gaussians options (see the module docstring)."""

    grid: int | None = None
    grid_multiple: int = 4
    start: int | None = None
    sort_every: int = 100
    sort_stop: int | None = None
    smoothness_lambda: float = _alias(3e-5, "lambda")
    w_means: float = _alias(0.0, "w_mean", "w_xyz")
    w_quats: float = _alias(1.0, "w_quat", "w_rotation", "w_rotations")
    w_scales: float = _alias(0.0, "w_scale")
    w_opacities: float = _alias(0.0, "w_opacity")
    w_sh0: float = 0.0
    w_shN: float = _alias(0.0, "w_shn")
    sort_keys: tuple[str, ...] = ("means", "sh0", "scales")
    plas_threshold: float = 1e-4
    verbose: bool = False
    layout: Literal["morton", "plas"] = "morton"
    space: Literal["encoded", "raw"] = "encoded"
    huber_delta: float = _alias(1.0, "delta")
    quat_isotropy: bool = _alias(False, "iso")

    @property
    def weights(self) -> dict[str, float]:
        """Per-field smoothness weights: quats always first (the summation order of the loss), then
        the other non-zero ones."""
        w = {"quats": self.w_quats}
        for name in ("means", "scales", "opacities", "sh0", "shN"):
            value = getattr(self, f"w_{name}")
            if value:
                w[name] = value
        return w

    def validate(self) -> None:
        if self.grid is not None and self.grid < 2:
            raise ValueError(f"grid must be >= 2, got {self.grid}")
        if self.grid_multiple < 1:
            raise ValueError(f"grid_multiple must be >= 1, got {self.grid_multiple}")
        if self.sort_every < 0 or (self.start is not None and self.start < 0):
            raise ValueError("sort_every and start must be >= 0")
        if not self.huber_delta > 0:
            raise ValueError(f"delta must be > 0, got {self.huber_delta}")
        if self.smoothness_lambda < 0 or any(w < 0 for w in self.weights.values()):
            raise ValueError("smoothness weights must be >= 0")
        if self.space == "encoded":
            no_code = [k for k, w in self.weights.items() if w and k not in ENCODED_STEPS]
            if no_code:
                raise ValueError(f"space=encoded has no encoded form for {no_code} ({', '.join(ENCODED_STEPS)})")
        bad = [k for k in self.sort_keys if k not in SORT_KEY_FIELDS]
        if bad or not self.sort_keys:
            raise ValueError(f"sort_keys: unknown {bad} ({', '.join(SORT_KEY_FIELDS)})")

    def start_step(self, cfg) -> int:
        if self.start is not None:
            return self.start
        c = cfg.resolved()
        return c.refine_stop if c.refine_stop < c.iterations else c.iterations // 2

    def resort_due(self, step: int, cfg) -> bool:
        s = self.start_step(cfg)
        if self.sort_every <= 0 or step <= s or (self.sort_stop is not None and step > self.sort_stop):
            return False
        return (step - s) % self.sort_every == 0

    def training(self, side: int, seed: int = 0) -> SOGTraining:
        return SOGTraining(grid_side=side, sort_every=self.sort_every, sort_keys=self.sort_keys,
                           loss_weights=dict(self.weights), smoothness_lambda=self.smoothness_lambda,
                           plas_threshold=self.plas_threshold, seed=seed, space=self.space,
                           huber_delta=self.huber_delta, quat_isotropy=self.quat_isotropy)


class SOGState(nn.Module):
    """Checkpointed state: the grid side (0 before the grid step)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("grid_side", torch.zeros((), dtype=torch.long))

    @property
    def side(self) -> int:
        return int(self.grid_side)

    @side.setter
    def side(self, k: int) -> None:
        self.grid_side.fill_(int(k))


# ---------------------------------------------------------------------------------------------
# row surgery


def reorder_rows(gaussians: Gaussians, optimizers, order) -> None:
    """Permute every field and every per-row optimizer state: new row i = old row order[i]."""
    idx = torch.as_tensor(np.asarray(order), dtype=torch.long).to(gaussians.device)
    n = len(gaussians)
    if idx.shape != (n,):
        raise ValueError(f"order has shape {tuple(idx.shape)}, expected ({n},)")
    ops.update_rows(gaussians, optimizers, lambda name, p: p[idx], lambda name, key, v: v[idx])


def grid_side_for(n: int, requested: int | None = None, multiple: int = 4) -> int:
    """The grid side for n Gaussians: `requested` when k^2 <= n, else the largest multiple of
    `multiple` (or, below that, the largest k) with k^2 <= n."""
    if requested is not None and requested * requested <= n:
        return int(requested)
    k = math.isqrt(n)
    if multiple > 1 and k >= multiple:
        k -= k % multiple
    return max(1, k)


def prune_to_grid(gaussians: Gaussians, optimizers, side: int) -> int:
    """Keep the side^2 highest-opacity Gaussians (in their current order); returns how many were removed."""
    keep = SOGTraining(grid_side=side).prune_index(gaussians)
    if keep is None:
        return 0
    drop = torch.ones(len(gaussians), dtype=torch.bool, device=gaussians.device)
    drop[keep] = False
    ops.remove(gaussians, optimizers, drop)
    return int(drop.sum())


# ---------------------------------------------------------------------------------------------
# the controller the `sog` method delegates to


class SOGController:
    def __init__(self, config: "SOGConfig") -> None:
        self.config = config
        self.state = SOGState()
        self._grid: SortedGrid | None = None
        self.reports: list[dict] = []

    def options(self, cfg=None) -> "SOGConfig":
        return self.config

    def identity_grid(self, side: int, opts: SOGConfig) -> SortedGrid:
        g = self._grid
        if g is None or g.width != side or len(g) != side * side:
            g = SortedGrid(torch.arange(side * side), side, side, opts.training(side))
            self._grid = g
        return g

    def active(self, gaussians: Gaussians) -> bool:
        k = self.state.side
        return k > 0 and len(gaussians) == k * k

    # -- hooks ------------------------------------------------------------------------------
    def loss(self, gaussians: Gaussians, cfg) -> Tensor | None:
        opts = self.options(cfg)
        if not self.active(gaussians) or opts.smoothness_lambda == 0:
            return None
        return smoothness_loss(gaussians, self.identity_grid(self.state.side, opts))

    def after_step(self, gaussians: Gaussians, optimizers, step: int, cfg) -> None:
        opts = self.options(cfg)
        k = self.state.side
        if k == 0:
            if step >= opts.start_step(cfg):
                self.build(gaussians, optimizers, step, cfg, opts)
            return
        if len(gaussians) != k * k:  # the strategy changed the count: back onto a square grid
            self.build(gaussians, optimizers, step, cfg, opts, side=k)
        elif opts.resort_due(step, cfg):
            self.sort(gaussians, optimizers, step, cfg, opts, warm=True)

    # -- pieces -----------------------------------------------------------------------------
    def build(self, gaussians, optimizers, step: int, cfg, opts: SOGConfig | None = None,
              side: int | None = None) -> dict:
        """Prune to k^2 and sort from scratch."""
        opts = opts or self.options(cfg)
        n0 = len(gaussians)
        k = grid_side_for(n0, side if side is not None else opts.grid, opts.grid_multiple)
        removed = prune_to_grid(gaussians, optimizers, k)
        self.state.side = k
        rep = {"step": step, "event": "grid", "before": n0, "side": k, "pruned": removed}
        if opts.grid is not None and k != opts.grid:
            rep["note"] = f"only {n0} Gaussians: grid {k}x{k} instead of {opts.grid}x{opts.grid}"
        srt = self.sort(gaussians, optimizers, step, cfg, opts, warm=False, report=False)
        rep.update(seconds=srt["seconds"], order=srt["order"])
        self._log(rep, opts)
        return rep

    def sort(self, gaussians, optimizers, step: int, cfg, opts: SOGConfig | None = None, warm: bool = True,
             report: bool = True) -> dict:
        """Sort the current rows on the k x k grid (Morton order of the positions, or PLAS with
        layout=plas) and permute rows + optimizer state into grid order. Returns a report (with the
        applied `order`)."""
        opts = opts or self.options(cfg)
        k = self.state.side
        n = len(gaussians)
        if k * k != n:
            raise RuntimeError(f"sog: {n} Gaussians do not fill the {k}x{k} grid")
        t0 = time.perf_counter()
        seed = (int(cfg.seed) * 1_000_003 + int(step)) % (2 ** 31)
        if opts.layout == "morton":  # texel i = i-th point along the Morton curve (row-major k x k)
            order = morton_order(gaussians.params["means"].detach().cpu().numpy())
        elif warm:  # rows are already in grid order: start from it with a smaller radius
            grid = SortedGrid(torch.arange(n), k, k, opts.training(k, seed=seed))
            order = np.asarray(grid.resort(gaussians, warm=True).order)
        else:
            order = np.asarray(SortedGrid.build(gaussians, opts.training(k, seed=seed)).last_result.order)
        reorder_rows(gaussians, optimizers, order)
        rep = {"step": step, "event": "resort" if warm else "sort", "seconds": time.perf_counter() - t0,
               "moved": int((order != np.arange(n)).sum()), "order": order}
        if report:
            self._log(rep, opts)
        return rep

    def _log(self, rep: dict, opts: SOGConfig) -> None:
        self.reports.append({k: v for k, v in rep.items() if k != "order"})
        del self.reports[:-50]
        if opts.verbose:
            print("sog: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in rep.items() if k != "order"))


@register_method("sog")
class SelfOrganizingGaussians(Method):
    """Self-Organizing Gaussians: 3DGS, then a k x k grid sorted for compression with a smoothness loss."""

    Config = SOGConfig
    supports_pinned_rows = False  # the grid sort permutes and prunes every row

    def __init__(self, config: SOGConfig | None = None) -> None:
        super().__init__(config)
        self.controller = SOGController(self.config)

    def loss_terms(self, x: LossInputs, train_cfg) -> dict[str, Tensor]:
        terms = super().loss_terms(x, train_cfg)
        smooth = self.controller.loss(x.gaussians, train_cfg)
        if smooth is not None:
            terms["sog_smoothness"] = smooth
        return terms

    def modules(self) -> dict[str, nn.Module]:
        return {"sog": self.controller.state}

    def after_step(self, gaussians: Gaussians, optimizers, step: int, train_cfg) -> None:
        self.controller.after_step(gaussians, optimizers, step, train_cfg)
