"""`ges`: Generalized Exponential Splatting (Hamdi et al., CVPR 2024).

    splatlab train scenes/robot --method ges [--method-option shape_lr=1e-2] ...

Each splat is a generalized exponential f(x) = o·exp(-σ^(β/2)), σ = ½ dᵀΣ⁻¹d (β = 2 is the
Gaussian), with one extra learned per-Gaussian field `shape` (raw, initialised to 0, saved as the
`.ply` vertex property `shape`).

How `shape` becomes a kernel. The paper's code does not change the falloff at all: it draws a
Gaussian whose scales are multiplied by the *effective-scale factor*

    φ(shape) = ReLU(2·sigmoid(ρ·shape)) ∈ (0, 2),  ρ = `shape_strength` (0.1),  φ(0) = 1.

splatlab's CPU rasterizer draws the true generalized exponential, so here `shape` sets β: β is the
exponent whose kernel has the *same second moment* (screen-space E[r²]) as the paper's Gaussian
with scales·φ, i.e. Γ(4/β)/Γ(2/β) = φ² (`beta_from_phi`). φ > 1 gives β < 2 (a sharper peak
with heavier tails), φ < 1 gives β > 2 (a flatter, box-like splat); shape = 0 is the Gaussian.
φ(β) is smallest (≈ 0.69) near β ≈ 13.8, so β is capped at `beta_max` (default 8, φ ≈ 0.70):
smaller φ (shrinking splats) all map to β = `beta_max`.

Backends. CPU / reference: the true kernel exp(-σ^(β/2)) with the learned scales. CUDA (gsplat
draws Gaussians only): the paper's effective-scale approximation, a Gaussian with scales·φ(β)
where φ(β) = sqrt(Γ(4/β)/Γ(2/β)) — the same φ as the paper wherever β is below its cap. The two
agree in each splat's footprint size (second moment) but not its profile: the CUDA render is
softer than the CPU one for β > 2 and lacks the heavy tails for β < 2, so a CUDA-trained scene
rendered on CPU (or the reverse) is close but not equal. `plain_gaussians()` (SOG, SPZ, .splat,
browser viewers) bakes the same approximation into the log-scales: s + log φ(β). (The paper's
repo stores `s·φ` in its `.ply`, a known bug; we add log φ.)

Training recipe (paper, `arguments/__init__.py` / `train_ges.py`):
* loss 0.3·L1 + 0.2·D-SSIM + 0.5·L1 inside a binary DoG mask of the target (frequency-modulated
  loss): grayscale target at 0.2× size, σ1 = 0.1 + 0.1·f (f < 50) or 0.1 + 0.1·(100 − f), σ2 = 2σ1,
  f = 100·step/iterations, min-max normalised, thresholded at 0.5 — coarse bands first and last,
  fine bands in the middle of training;
* shape learning rate 1e-3 (here 1e-2, see below); every 1000 steps (during densification) every
  shape is reset to 0 (and its Adam state cleared; here off by default, see below); every 100 steps
  (during densification) splats with φ < 0.005 are pruned;
* densification gradient threshold 3e-4 (a `TrainConfig` setting, `--grad-threshold 3e-4`; not
  the default here, see below).

Departures, measured on robot (128², 3000 steps, capped at 58 % of gs3d's Gaussians; README):
* `shape_lr` defaults to 1e-2, not the paper's 1e-3. The paper trains 40k steps, 25k of them after
  the last shape reset; Adam moves a parameter by at most about lr per step, so in a 3000-step run
  (last reset at step 2000) 1e-3 leaves every φ within [0.95, 1.05]: every splat stays a Gaussian,
  and GES measured the same as GES with the shape frozen (34.08 vs 34.09 dB). With 1e-2 the shapes
  settle (mostly flatter than a Gaussian, median β ≈ 2.3) and the test PSNR rose by 0.8 dB at the
  same number of Gaussians. `--method-option shape_lr=1e-3` restores the paper's value.
* `shape_reset_every` defaults to 0 (never), not the paper's 1000. In a 3000-step run the fast
  preset densifies until step 2100, so the paper's schedule resets every shape at steps 1000 and
  2000 and leaves the last 1000 steps to learn them again (median β 2.34 at the end); without the
  resets the shapes keep moving (median β 3.2, 5 % at `beta_max`) and robot at 59 % of gs3d's
  Gaussians scored 35.47 dB instead of 35.10 (gs3d 34.82; README, 2026-12-07 late evening).
  `--method-option shape_reset_every=1000` restores the paper's value.
* Under a Gaussian budget (`--cap-max`) the paper's 3e-4 threshold stops growing short of the budget
  and grows later; with the shape frozen that cost 0.31 dB on robot against gs3d's 2e-4 (11.0k vs
  14.7k Gaussians). The budget, not the threshold, sets the size, so the benchmark no longer passes
  3e-4 for ges.
* The frequency-modulated loss is kept; with the shape frozen it measured 0.08 dB below gs3d's
  loss at the same count (34.40 vs 34.48 dB).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from splatlab.cameras import Cameras
from splatlab.densify import ops
from splatlab.gaussians import CORE_FIELDS, Gaussians
from splatlab.losses import l1_loss
from splatlab.metrics import gaussian_blur, ssim

from .base import LossInputs, Method, MethodConfig, RenderContext
from .registry import register_method

__all__ = ["GESConfig", "GeneralizedExponentialSplatting", "phi_of_shape", "beta_from_phi", "phi_of_beta",
           "dog_mask", "dog_sigma"]

SHAPE_FIELD = "shape"
BETA_MONOTONE = 13.5  # φ(β) (below) decreases up to β ≈ 13.78 (φ ≈ 0.6935), then rises back to 1/√2


@dataclass
class GESConfig(MethodConfig):
    """GES options (see the module docstring)."""

    shape_lr: float = 1e-2  # paper: 1e-3 over 40k steps (see the module docstring)
    shape_strength: float = 0.1  # ρ in φ = 2·sigmoid(ρ·shape)
    shape_reset_every: int = 0  # 0: never (paper: 1000 over 40k steps; see the module docstring)
    prune_phi: float = 0.005
    prune_every: int = 100  # 0: never
    beta_max: float = 8.0
    l1_weight: float = 0.3
    dssim_weight: float = 0.2
    freq_weight: float = 0.5
    dog_downscale: float = 0.2
    dog_threshold: float = 0.5
    kernel: Literal["auto", "exact", "approx"] = "auto"  # auto: exact on CPU, effective scale on CUDA

    def validate(self) -> None:
        if self.shape_lr < 0:
            raise ValueError(f"shape_lr must be >= 0, got {self.shape_lr}")
        if not self.shape_strength > 0:
            raise ValueError(f"shape_strength must be > 0, got {self.shape_strength}")
        if self.shape_reset_every < 0 or self.prune_every < 0:
            raise ValueError("shape_reset_every and prune_every must be >= 0")
        if not 0 <= self.prune_phi < 2:
            raise ValueError(f"prune_phi must be in [0, 2), got {self.prune_phi}")
        if not 2 < self.beta_max <= BETA_MONOTONE:
            raise ValueError(f"beta_max must be in (2, {BETA_MONOTONE}], got {self.beta_max}")
        if min(self.l1_weight, self.dssim_weight, self.freq_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.l1_weight + self.dssim_weight + self.freq_weight <= 0:
            raise ValueError("at least one loss weight must be > 0")
        if not 0 < self.dog_downscale <= 1:
            raise ValueError(f"dog_downscale must be in (0, 1], got {self.dog_downscale}")
        if not 0 < self.dog_threshold < 1:
            raise ValueError(f"dog_threshold must be in (0, 1), got {self.dog_threshold}")


# ------------------------------------------------------------------------------ kernel maths

def phi_of_shape(shape: Tensor, strength: float) -> Tensor:
    """The paper's effective-scale factor φ = ReLU(2·sigmoid(ρ·shape)) ∈ (0, 2)."""
    return torch.relu(2.0 * torch.sigmoid(strength * shape))


def _moment_log_ratio(u: Tensor) -> Tensor:
    """h(u) = ln Γ(2u) − ln Γ(u) with u = 2/β: E[r²] of exp(-σ^(β/2)) is 2s²·exp(h)."""
    return torch.lgamma(2.0 * u) - torch.lgamma(u)


def phi_of_beta(beta: Tensor) -> Tensor:
    """Scale factor of the Gaussian with the same second moment as the β kernel: sqrt(Γ(4/β)/Γ(2/β))."""
    return torch.exp(0.5 * _moment_log_ratio(2.0 / beta))


def beta_from_phi(phi: Tensor, beta_max: float, iterations: int = 40) -> Tensor:
    """β with Γ(4/β)/Γ(2/β) = φ² (differentiable in φ), capped at `beta_max` (φ < φ(beta_max))."""
    u_lo = 2.0 / beta_max
    u_hi = 2.0 / 0.5  # β = 0.5 has φ ≈ 8.9, above the paper's φ < 2
    target = 2.0 * torch.log(phi.clamp_min(1e-30))
    h_lo = float(_moment_log_ratio(torch.tensor(u_lo, dtype=torch.float64)))
    target = torch.clamp(target, min=h_lo)
    with torch.no_grad():  # bisection: h is increasing in u
        t = target.detach().double()
        lo = torch.full_like(t, u_lo)
        hi = torch.full_like(t, u_hi)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = _moment_log_ratio(mid) < t
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        u0 = 0.5 * (lo + hi)
        slope = 2.0 * torch.digamma(2.0 * u0) - torch.digamma(u0)  # h'(u) > 0
        residual = _moment_log_ratio(u0)
    # one Newton step carries the gradient: du/dtarget = 1/h'(u) (implicit function theorem)
    u = (u0 + (target.double() - residual) / slope).to(phi.dtype)
    return 2.0 / u


def dog_sigma(step: int, iterations: int) -> float:
    """σ1 of the DoG mask at this step: f = 100·step/iterations, 0.1 + 0.1·f rising to f = 50, then falling."""
    f = 100.0 * step / max(1, iterations)
    return 0.1 + 0.1 * (f if f < 50 else 100.0 - f)


def _blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    return gaussian_blur(x, 2 * radius + 1, sigma)


@torch.no_grad()
def dog_mask(target: Tensor, sigma1: float, downscale: float = 0.2, threshold: float = 0.5) -> Tensor:
    """Binary difference-of-Gaussians mask (C, H, W, 1) of images (C, H, W, 3): grayscale at
    `downscale`× size, blur σ1 minus blur 2σ1, min-max normalised per image, ≥ `threshold`, and
    nearest-upsampled back. It marks the image's structure at the band σ1 selects."""
    C, H, W, _ = target.shape
    gray = target.mean(dim=-1, keepdim=True).permute(0, 3, 1, 2)  # (C, 1, H, W)
    h, w = max(1, round(H * downscale)), max(1, round(W * downscale))
    small = F.interpolate(gray, size=(h, w), mode="area") if (h, w) != (H, W) else gray
    dog = _blur(small, sigma1) - _blur(small, 2.0 * sigma1)
    lo = dog.amin(dim=(2, 3), keepdim=True)
    hi = dog.amax(dim=(2, 3), keepdim=True)
    norm = (dog - lo) / (hi - lo).clamp_min(1e-12)
    mask = (norm >= threshold).to(target.dtype)
    if (h, w) != (H, W):
        mask = F.interpolate(mask, size=(H, W), mode="nearest")
    return mask.permute(0, 2, 3, 1)


# ------------------------------------------------------------------------------ the method

@register_method("ges")
class GeneralizedExponentialSplatting(Method):
    """Generalized exponential splats: a learned per-splat shape β, frequency-modulated loss."""

    Config = GESConfig
    config: GESConfig

    # -- fields ----------------------------------------------------------------------------------
    def extra_fields(self, n: int, train_cfg) -> dict[str, Tensor]:
        return {SHAPE_FIELD: torch.zeros(n)}

    def extra_lrs(self, train_cfg) -> dict[str, float]:
        return {SHAPE_FIELD: self.config.shape_lr}

    def phi(self, gaussians: Gaussians) -> Tensor:
        return phi_of_shape(gaussians.params[SHAPE_FIELD], self.config.shape_strength)

    def betas(self, gaussians: Gaussians) -> Tensor:
        """Per-splat exponent β (N,), 2 for shape = 0."""
        return beta_from_phi(self.phi(gaussians), self.config.beta_max)

    def effective_log_scales(self, gaussians: Gaussians) -> Tensor:
        """Log-scales of the effective-scale Gaussians: s + log φ(β)."""
        return gaussians.params["scales"] + torch.log(phi_of_beta(self.betas(gaussians)))[:, None]

    # -- rendering -------------------------------------------------------------------------------
    def _exact(self, backend: str) -> bool:
        if self.config.kernel != "auto":
            return self.config.kernel == "exact"
        return backend != "cuda"

    def raster_args(self, gaussians: Gaussians, cameras: Cameras, ctx: RenderContext) -> dict[str, Any]:
        args = super().raster_args(gaussians, cameras, ctx)
        if self._exact(ctx.backend):
            args["shapes"] = self.betas(gaussians)
        else:
            args["scales"] = torch.exp(self.effective_log_scales(gaussians))
        return args

    def plain_gaussians(self, gaussians: Gaussians) -> Gaussians:
        """Gaussians with the same per-splat second moment (scales·φ(β)); profiles differ (see module)."""
        with torch.no_grad():
            fields = {k: gaussians.params[k].detach() for k in CORE_FIELDS}
            fields["scales"] = self.effective_log_scales(gaussians).detach()
        return Gaussians.from_fields(fields)

    # -- training --------------------------------------------------------------------------------
    def loss_terms(self, x: LossInputs, train_cfg) -> dict[str, Tensor]:
        c = self.config
        terms: dict[str, Tensor] = {}
        if c.l1_weight:
            terms["l1"] = c.l1_weight * l1_loss(x.render, x.target)
        if c.dssim_weight:
            terms["dssim"] = c.dssim_weight * (1.0 - ssim(x.render, x.target))
        if c.freq_weight:
            mask = dog_mask(x.target, dog_sigma(x.step, train_cfg.iterations), c.dog_downscale, c.dog_threshold)
            terms["freq_l1"] = c.freq_weight * torch.mean(torch.abs(x.render - x.target) * mask)
        return terms

    def after_step(self, gaussians: Gaussians, optimizers, step: int, train_cfg) -> None:
        """Shape pruning and reset, inside the densification window like the paper's."""
        c = self.config
        stop = train_cfg.resolved().refine_stop  # same step convention as the densification strategy
        if not 0 < step < stop:
            return
        if c.prune_every and c.prune_phi > 0 and step % c.prune_every == 0:
            with torch.no_grad():
                prune = self.phi(gaussians) < c.prune_phi
            if bool(prune.any()) and not bool(prune.all()):
                ops.remove(gaussians, optimizers, prune)
        if c.shape_reset_every and step % c.shape_reset_every == 0:
            ops.update_rows(gaussians, optimizers, lambda name, p: torch.zeros_like(p),
                            lambda name, key, v: torch.zeros_like(v), names=[SHAPE_FIELD])
