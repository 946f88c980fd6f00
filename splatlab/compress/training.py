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

Options (`TrainConfig.method_options`; on the command line `--method-option key=value`; a
`sog_` prefix and dashes are accepted, e.g. `sog-grid=64`):

    grid            grid side k (default: from the count at the grid step, see above)
    grid_multiple   k is rounded down to a multiple of this when derived (default 4)
    start           grid step: prune + first sort (default refine_stop, or iterations // 2)
    sort_every      re-sort interval in steps (default 100; 0 = never re-sort)
    sort_stop       no re-sorts after this step (default: to the end)
    lambda          overall smoothness weight (default 3e-5)
    w_<field>       per-field weight (default w_quats=1 only), e.g. w_opacities=1 w_scales=0 w_sh0=0
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
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from splatlab.densify import ops
from splatlab.gaussians import CORE_FIELDS, Gaussians
from splatlab.io._common import morton_order

from .smoothness import ENCODED_STEPS, SOGTraining, SortedGrid, smoothness_loss

__all__ = ["SOGOptions", "SOGState", "SOGController", "parse_options", "reorder_rows", "prune_to_grid",
           "grid_side_for"]

_DEFAULT_WEIGHTS = {"quats": 1.0}
_SCALAR_KEYS = {"grid": int, "grid_multiple": int, "start": int, "sort_every": int, "sort_stop": int,
                "lambda": float, "plas_threshold": float, "verbose": bool, "sort_keys": str,
                "layout": str, "space": str, "delta": float, "iso": bool}
_LAYOUTS = ("plas", "morton")
_SPACES = ("raw", "encoded")


@dataclass
class SOGOptions:
    grid: int | None = None
    grid_multiple: int = 4
    start: int | None = None
    sort_every: int = 100
    sort_stop: int | None = None
    smoothness_lambda: float = 3e-5
    weights: dict[str, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    sort_keys: tuple[str, ...] = ("means", "sh0", "scales")
    plas_threshold: float = 1e-4
    verbose: bool = False
    layout: str = "morton"
    space: str = "encoded"
    huber_delta: float = 1.0
    quat_isotropy: bool = False

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


def _as_bool(v) -> bool:
    if isinstance(v, str):
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {v!r}")
    return bool(v)


def _norm_key(key: str) -> str:
    k = str(key).strip().lower().replace("-", "_")
    return k[4:] if k.startswith("sog_") else k


def parse_options(method_options: dict[str, Any] | None) -> SOGOptions:
    """`TrainConfig.method_options` -> SOGOptions (ValueError on unknown keys or bad values)."""
    o = SOGOptions()
    for raw, value in (method_options or {}).items():
        key = _norm_key(raw)
        try:
            if key.startswith("w_"):
                name = key[2:]
                if name == "opacity":
                    name = "opacities"
                elif name in ("rotation", "rotations", "quat"):
                    name = "quats"
                elif name in ("scale", "mean", "xyz"):
                    name = {"scale": "scales", "mean": "means", "xyz": "means"}[name]
                o.weights[name] = float(value)
                continue
            if key not in _SCALAR_KEYS:
                raise KeyError(key)
            if value is None or (isinstance(value, str) and value.lower() == "none"):
                if key in ("grid", "start", "sort_stop"):
                    setattr(o, key, None)
                    continue
                raise ValueError("needs a value")
            if key == "verbose":
                o.verbose = _as_bool(value)
            elif key == "iso":
                o.quat_isotropy = _as_bool(value)
            elif key == "sort_keys":
                o.sort_keys = tuple(k.strip() for k in str(value).split(",") if k.strip())
            elif key == "lambda":
                o.smoothness_lambda = float(value)
            elif key in ("layout", "space"):
                v = str(value).strip().lower()
                allowed = _LAYOUTS if key == "layout" else _SPACES
                if v not in allowed:
                    raise ValueError(f"expected one of {', '.join(allowed)}")
                setattr(o, key, v)
            elif key == "delta":
                o.huber_delta = float(value)
                if not o.huber_delta > 0:
                    raise ValueError("must be > 0")
            else:
                f = float(value)
                if f != int(f):
                    raise ValueError("expected an integer")
                setattr(o, key, int(f))
        except KeyError:
            known = sorted(set(_SCALAR_KEYS) | {"w_<field>"})
            raise ValueError(f"unknown sog method option {raw!r} (known: {', '.join(known)})") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sog method option {raw}={value!r}: {exc}") from None
    if o.grid is not None and o.grid < 2:
        raise ValueError(f"sog method option grid must be >= 2, got {o.grid}")
    if o.grid_multiple < 1:
        raise ValueError(f"sog method option grid_multiple must be >= 1, got {o.grid_multiple}")
    if o.sort_every < 0 or (o.start is not None and o.start < 0):
        raise ValueError("sog method options sort_every and start must be >= 0")
    if o.smoothness_lambda < 0 or any(w < 0 for w in o.weights.values()):
        raise ValueError("sog smoothness weights must be >= 0")
    unknown = [k for k, w in o.weights.items() if w and k not in CORE_FIELDS]
    if unknown:
        raise ValueError(f"sog smoothness weight for unknown field(s) {unknown} ({', '.join(CORE_FIELDS)})")
    if o.space == "encoded":
        no_code = [k for k, w in o.weights.items() if w and k not in ENCODED_STEPS]
        if no_code:
            raise ValueError(f"sog space=encoded has no encoded form for {no_code} ({', '.join(ENCODED_STEPS)})")
    bad = [k for k in o.sort_keys if k not in ("means", "sh0", "scales", "opacities", "quats", "shN")]
    if bad or not o.sort_keys:
        raise ValueError(f"sog sort_keys: unknown {bad} (means, sh0, scales, opacities, quats, shN)")
    return o


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
    def __init__(self) -> None:
        self.state = SOGState()
        self._grid: SortedGrid | None = None
        self._opts_key = None
        self._opts: SOGOptions | None = None
        self.reports: list[dict] = []

    def options(self, cfg) -> SOGOptions:
        key = repr(sorted((str(k), repr(v)) for k, v in (cfg.method_options or {}).items()))
        if key != self._opts_key:
            self._opts = parse_options(cfg.method_options)
            self._opts_key = key
            self._grid = None
        return self._opts

    def identity_grid(self, side: int, opts: SOGOptions) -> SortedGrid:
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
    def build(self, gaussians, optimizers, step: int, cfg, opts: SOGOptions | None = None,
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

    def sort(self, gaussians, optimizers, step: int, cfg, opts: SOGOptions | None = None, warm: bool = True,
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

    def _log(self, rep: dict, opts: SOGOptions) -> None:
        self.reports.append({k: v for k, v in rep.items() if k != "order"})
        del self.reports[:-50]
        if opts.verbose:
            print("sog: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in rep.items() if k != "order"))

