"""Grid-smoothness regulariser of Self-Organizing Gaussians, and the sorted grid it works on.

A trainer uses it like this (wiring lives in the trainer, not here):

    cfg = SOGTraining(grid_side=512)                 # prune to 512^2, re-sort every 1000 steps
    keep = cfg.prune_index(gaussians)               # highest-opacity k^2 (None: nothing to prune)
    grid = SortedGrid.build(gaussians, cfg)          # PLAS sort at the start
    for step in ...:
        loss = photometric + smoothness_loss(gaussians, grid, cfg)   # every step
        if cfg.should_resort(step):
            grid.resort(gaussians)                   # every K steps (also after densify/prune)

The loss lays every attribute with a non-zero weight out as a (C, H, W) image in grid order,
blurs it with a 5-tap Gaussian (sigma 3; x circular, y reflect padding) and takes the Huber
distance to the blurred, *detached* image, averaged over the used texels; the weighted sum over
attributes is multiplied by `smoothness_lambda`.  Gradients flow into the Gaussian parameters.

`space="raw"` smooths the raw parameters (the paper).  `space="encoded"` smooths what the SOG
encoder stores, in units of its 8-bit step (`encoded_values`): unit quaternions with the
encoder's sign (largest component positive), 255 * sigmoid(opacity), and log-scales / sh0 divided
by a typical spacing of their 256-entry codebooks.  The quaternion term is sign-invariant (the
loss of q and -q is the same), so blurring neighbours cannot pull a quaternion through zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .plas import PLASResult, grid_shape_for, plas_sort, sort_keys

__all__ = ["SOGTraining", "SortedGrid", "smoothness_loss", "grid_images", "blur_grid", "encoded_values",
           "ENCODED_STEPS"]

# Size of one 8-bit code step of the SOG encoder, per attribute, in the attribute's own units.
# quats: the smallest three components c are stored as 255 * (c * sqrt2 / 2 + 0.5).  opacities:
# 255 * sigmoid.  scales (log) and sh0: 256-entry 1-D k-means codebooks; 0.02 is the median spacing
# per splat measured on robot (0.018 / 0.019), i.e. a typical code step, not an exact one.
ENCODED_STEPS: dict[str, float] = {"quats": math.sqrt(2.0) / 255.0, "opacities": 1.0 / 255.0,
                                   "scales": 0.02, "sh0": 0.02}


@dataclass
class SOGTraining:
    """Settings of Self-Organizing-Gaussians training (defaults follow the paper's configs)."""

    grid_side: int | None = None  # k: prune to at most k^2 Gaussians on a k x k grid; None -> SOG texture size
    sort_every: int = 1000  # PLAS re-sort interval K (steps)
    sort_start: int = 0  # first sort at this step
    sort_stop: int | None = None  # no re-sorts after this step (None: to the end)
    sort_keys: tuple[str, ...] = ("means", "sh0", "scales")
    sort_key_weights: dict[str, float] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=lambda: {"quats": 10.0, "opacities": 1.0})
    smoothness_lambda: float = 1.0
    blur_sigma: float = 3.0
    blur_taps: int = 5
    huber_delta: float = 1.0  # in the units of `space` (encoded: code steps)
    space: str = "raw"  # "raw" parameters or "encoded" (what the SOG file stores, in code steps)
    quat_isotropy: bool = False  # weight each quaternion's term by min/max scale (rotation matters less)
    resort_radius_fraction: float = 0.125  # warm re-sorts start at this fraction of the grid side
    plas_threshold: float = 1e-4
    seed: int = 0

    def should_resort(self, step: int) -> bool:
        if step < self.sort_start or (self.sort_stop is not None and step > self.sort_stop):
            return False
        return (step - self.sort_start) % max(1, self.sort_every) == 0

    def prune_index(self, gaussians) -> Tensor | None:
        """Indices (ascending) of the k^2 highest-opacity Gaussians, or None when N <= k^2."""
        if self.grid_side is None:
            return None
        k2 = int(self.grid_side) ** 2
        n = len(gaussians)
        if n <= k2:
            return None
        op = gaussians.params["opacities"].detach().reshape(-1)
        keep = torch.topk(op, k2, sorted=False).indices
        return torch.sort(keep).values

    def grid_shape(self, n: int) -> tuple[int, int]:
        if self.grid_side is not None and n <= int(self.grid_side) ** 2:
            return int(self.grid_side), int(self.grid_side)
        return grid_shape_for(n)


class SortedGrid:
    """A PLAS layout of N Gaussians on a W x H grid: texel i (row-major) holds Gaussian order[i];
    texels i >= N are empty."""

    def __init__(self, order, width: int, height: int, config: SOGTraining | None = None) -> None:
        o = torch.as_tensor(np.asarray(order), dtype=torch.long).reshape(-1)
        if o.numel() > width * height:
            raise ValueError(f"{o.numel()} items do not fit a {width}x{height} grid")
        self.order = o
        self.width, self.height = int(width), int(height)
        self.config = config or SOGTraining()
        self.last_result: PLASResult | None = None
        self._mask_cache: dict = {}

    def __len__(self) -> int:
        return self.order.numel()

    @classmethod
    def build(cls, gaussians, config: SOGTraining | None = None, **plas_kwargs) -> "SortedGrid":
        cfg = config or SOGTraining()
        w, h = cfg.grid_shape(len(gaussians))
        grid = cls(torch.arange(len(gaussians)), w, h, cfg)
        grid._sort(gaussians, None, **plas_kwargs)
        return grid

    def _features(self, gaussians) -> np.ndarray:
        return sort_keys(gaussians, self.config.sort_keys, self.config.sort_key_weights)

    def _sort(self, gaussians, init_order, **plas_kwargs) -> PLASResult:
        kw = {"improvement_threshold": self.config.plas_threshold, "seed": self.config.seed}
        kw.update(plas_kwargs)
        res = plas_sort(self._features(gaussians), self.width, self.height, standardized=True,
                        init_order=init_order, **kw)
        self.order = torch.from_numpy(res.order)
        self._mask_cache.clear()
        self.last_result = res
        return res

    def resort(self, gaussians, warm: bool = True, **plas_kwargs) -> PLASResult:
        """Re-sort for the current Gaussians. Same count: a warm start from the current layout with
        a smaller starting radius; a changed count (densify/prune): a new grid size and a full sort."""
        n = len(gaussians)
        if n == len(self) and warm:
            plas_kwargs.setdefault("radius_start",
                                   max(1.0, self.config.resort_radius_fraction * max(self.width, self.height)))
            return self._sort(gaussians, self.order.numpy(), **plas_kwargs)
        self.width, self.height = self.config.grid_shape(n)
        return self._sort(gaussians, None, **plas_kwargs)

    def mask(self, device=None) -> Tensor:
        """(1, 1, H, W) float: 1 on used texels."""
        key = str(device)
        if key not in self._mask_cache:
            m = torch.zeros(self.width * self.height, device=device)
            m[: len(self)] = 1.0
            self._mask_cache[key] = m.reshape(1, 1, self.height, self.width)
        return self._mask_cache[key]

    def image(self, values: Tensor) -> Tensor:
        """(N, ...) per-Gaussian values -> (1, C, H, W) image in grid order (empty texels 0)."""
        n = len(self)
        if values.shape[0] != n:
            raise ValueError(f"grid holds {n} Gaussians but got values for {values.shape[0]}; call resort() "
                             f"after densification or pruning")
        flat = values.reshape(n, -1)[self.order.to(values.device)]
        pad = self.width * self.height - n
        if pad:
            flat = torch.cat([flat, flat.new_zeros(pad, flat.shape[1])])
        return flat.T.reshape(1, -1, self.height, self.width)


def _kernel(sigma: float, taps: int, device, dtype) -> Tensor:
    r = taps // 2
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def blur_grid(img: Tensor, sigma: float = 3.0, taps: int = 5) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W): x circular padding, y reflect padding."""
    C = img.shape[1]
    k = _kernel(sigma, taps, img.device, img.dtype)
    r = taps // 2
    if r == 0:
        return img
    x = F.pad(img, (r, r, 0, 0), mode="circular") if img.shape[-1] >= r else F.pad(img, (r, r, 0, 0), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(C, 1, 1, taps), groups=C)
    ymode = "reflect" if img.shape[-2] > r else "replicate"
    x = F.pad(x, (0, 0, r, r), mode=ymode)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(C, 1, taps, 1), groups=C)


def grid_images(gaussians, grid: SortedGrid, names) -> dict[str, Tensor]:
    return {name: grid.image(gaussians.params[name]) for name in names}


def encoded_values(name: str, p: Tensor) -> Tensor:
    """(N, C) values of raw parameter `name` as the SOG encoder sees them, in code steps.

    quats: normalised and sign-flipped like the encoder (largest |component| positive; the flip is
    piecewise constant, so gradients flow through the normalisation only)."""
    if name == "quats":
        q = p / p.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        with torch.no_grad():
            big = q.gather(-1, q.abs().argmax(-1, keepdim=True))
            sign = torch.where(big < 0, -1.0, 1.0).to(q.dtype)
        return q * sign / ENCODED_STEPS["quats"]
    if name == "opacities":
        return torch.sigmoid(p).reshape(p.shape[0], -1) / ENCODED_STEPS["opacities"]
    if name in ENCODED_STEPS:
        return p.reshape(p.shape[0], -1) / ENCODED_STEPS[name]
    raise KeyError(f"no encoded form for field {name!r} (encoded: {', '.join(ENCODED_STEPS)})")


def smoothness_loss(gaussians, grid: SortedGrid, config: SOGTraining | None = None, *,
                    weights: dict[str, float] | None = None) -> Tensor:
    """lambda * sum_a w_a * mean Huber(I_a, blur(I_a).detach()) over the used texels.

    `weights` (attribute -> weight) overrides `config.loss_weights`; attributes are raw parameters
    (`means`, `quats`, `scales`, `opacities`, `sh0`, `shN`, or an extra field), or with
    `config.space == "encoded"` their `encoded_values` (quats, opacities, scales, sh0).  Encoded
    quats compare min over the sign of q, which makes the term invariant under q -> -q.
    """
    cfg = config or grid.config
    w = cfg.loss_weights if weights is None else weights
    device = gaussians.params["means"].device
    total = torch.zeros((), device=device)
    mask = grid.mask(device)
    full = len(grid) == grid.width * grid.height
    if not full:
        mblur = blur_grid(mask, cfg.blur_sigma, cfg.blur_taps).clamp_min(1e-8)
    used = float(len(grid))
    encoded = cfg.space == "encoded"
    for name, weight in w.items():
        if not weight:
            continue
        if name not in gaussians.params:
            raise KeyError(f"smoothness weight for unknown field {name!r}")
        p = gaussians.params[name]
        if p.reshape(p.shape[0], -1).shape[1] == 0:
            continue
        img = grid.image(encoded_values(name, p) if encoded else p)
        with torch.no_grad():
            target = blur_grid(img, cfg.blur_sigma, cfg.blur_taps)  # empty texels are 0 in img
            if not full:
                target = target / mblur
        hub = F.huber_loss(img, target, reduction="none", delta=cfg.huber_delta)
        if encoded and name == "quats":  # q and -q are the same rotation: compare with the nearer sign
            flip = F.huber_loss(-img, target, reduction="none", delta=cfg.huber_delta)
            hub = torch.minimum(hub.sum(1, keepdim=True), flip.sum(1, keepdim=True))
        if name == "quats" and cfg.quat_isotropy:  # a near-isotropic splat looks the same at any rotation
            with torch.no_grad():
                ls = gaussians.params["scales"].detach()
                iso = torch.exp(ls.min(-1).values - ls.max(-1).values)  # s_min / s_max, in (0, 1]
            hub = hub * grid.image(iso[:, None])
        if not full:
            hub = hub * mask
        total = total + float(weight) * hub.sum() / (used * img.shape[1])  # mean over texels and channels
    return cfg.smoothness_lambda * total


def is_square(n: int) -> bool:
    k = int(math.isqrt(n))
    return k * k == n
